"""`funreason data audit` and the audit inside `train`: BFCL definitions under other names, BFCL-named
tools in dialogue history, paraphrased questions; real BFCL data, the real open sources."""

from __future__ import annotations

import json

from conftest import funreason

from funreason.data import open_dir
from funreason.data.audit import audit_examples, audit_row, bfcl_index
from funreason.data.open_sources import read_source, source_folder

HISTOGRAM = {"name": "crOh7Z4rgqCQLY", "description": "Create a histogram based on provided data.",
             "parameters": {"type": "object", "properties": {
                 "data": {"type": "array", "items": {"type": "integer"}, "description": "The data for which histogram needs to be plotted."},
                 "bins": {"type": "integer", "description": "The number of equal-width bins in the range. Default is 10."}},
                 "required": ["data", "bins"]}}
GAME = {"name": "vintage_price", "description": "Look up what a collectible costs today.",
        "parameters": {"type": "object", "properties": {"title": {"type": "string", "description": "Title."}}, "required": ["title"]}}
CLEAN = {"name": "tide_table", "description": "Tide times at a harbour on a day, with the height of the water.",
         "parameters": {"type": "object", "properties": {"harbour": {"type": "string", "description": "The name of the harbour."}}, "required": ["harbour"]}}


def rows():
    call = lambda name, **kw: json.dumps([{"name": name, "arguments": kw}])  # noqa: E731
    return [
        {"id": "masked", "query": "Make a chart of 3, 4, 4, 5 in two buckets.", "tools": json.dumps([HISTOGRAM]),
         "answers": call("crOh7Z4rgqCQLY", data=[3, 4, 4, 5], bins=2)},
        # simple_python_345, "Find the value of a vintage Super Mario Bros. game from 1985 like new.", reworded
        {"id": "paraphrase", "query": "Please find the value of a vintage Super Mario Bros. game released in 1985, in like new condition.",
         "tools": json.dumps([GAME]), "answers": call("vintage_price", title="Super Mario Bros.")},
        {"id": "clean", "query": "When is high tide in Brest on Sunday?", "tools": json.dumps([CLEAN]), "answers": call("tide_table", harbour="Brest")},
    ]


def write(path, items):
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return path


def test_the_masked_toolrl_rows_and_glaive_history_calls_are_caught():
    index = bfcl_index()
    toolrl = {e.id: e for e in read_source("toolrl", source_folder(open_dir(), "toolrl"))[0]}
    expect = {"toolrl-290": "create_histogram", "toolrl-334": "create_histogram", "toolrl-242": "safeway.order",
              "toolrl-78": "group_dynamics.pattern"}
    for row_id, bfcl_name in expect.items():
        report = audit_row(toolrl[row_id], index)
        assert report["blocking"] and bfcl_name in {f["bfcl"] for f in report["findings"]}, (row_id, report)
    glaive = read_source("glaive", source_folder(open_dir(), "glaive"))[0]
    history = [(e, c.name) for e in glaive for m in e.messages[:-1] for c in (m.tool_calls or []) if c.name in {"calculate_bmi", "calculate_area"}]
    assert len(history) >= 5
    for ex, name in history:
        assert name in {f["bfcl"] for f in audit_row(ex, index)["findings"] if f["kind"] == "name"}, ex.id


def test_data_audit_reports_each_row_with_the_entry_and_why(tmp_path):
    data = write(tmp_path / "d.jsonl", rows())
    proc = funreason("data", "audit", data, "--out", tmp_path / "a")
    assert "2 of 3 rows resemble BFCL entries, 2 by definition or question" in proc.stdout, proc.stdout
    report = {r["id"]: r for r in map(json.loads, (tmp_path / "a" / "audit.jsonl").read_text().splitlines())}
    assert not report["clean"]["flagged"] and report["clean"]["nearest"]  # the nearest function is named even when clean
    masked = {f["kind"]: f for f in report["masked"]["findings"]}
    assert masked["description"]["bfcl"] == "create_histogram" and masked["parameter_descriptions"]["score"] == 1.0
    (question,) = report["paraphrase"]["findings"]
    assert question["kind"] == "question" and question["entry"] == "simple_python_345" and question["score"] >= 0.6


def test_train_stops_on_a_renamed_bfcl_function_and_a_paraphrased_question(tmp_path, tiny_model_dir):
    data = write(tmp_path / "d.jsonl", rows())
    out = tmp_path / "run"
    proc = funreason("train", "--model", tiny_model_dir, "--data", data, "--out", out, "--max-steps", 1, check=False)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "training stops" in said, said[-3000:]
    assert "row masked:" in said and "create_histogram" in said and "row paraphrase: simple_python_345 (question" in said
    assert not (out / "final").exists() and not (out / "run.json").exists() and (out / "benchmark_audit" / "audit.md").exists()
    # allowed, it trains, and run.json says what the audit found
    funreason("train", "--model", tiny_model_dir, "--data", data, "--out", out, "--max-steps", 1, "--batch-size", 1,
              "--report-to", "none", "--allow-benchmark-overlap")
    audit = json.loads((out / "run.json").read_text())["benchmark_audit"]
    assert audit == {"audited": True, "rows": 3, "flagged": 2, "blocking": 2, "allowed": True, "report": str(out / "benchmark_audit" / "audit.jsonl")}


def test_the_index_is_built_once_and_audits_thousands_of_rows(tmp_path):
    seal = read_source("seal-tools", source_folder(open_dir(), "seal-tools"))[0]
    summary = audit_examples(seal)
    assert summary.rows == len(seal) > 1900 and 0 < summary.flagged < summary.rows / 10
