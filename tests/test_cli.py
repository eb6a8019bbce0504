"""The `funreason` command, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest
from conftest import SAMPLE, file_size_limit, funreason

from funreason.data.synth.kinds import write_sample


run = funreason


@pytest.mark.integration  # builds a model inline
def test_tiny_model_loads_with_auto_classes(tmp_path):
    run("tiny-model", "--out", tmp_path / "m", "--layers", "1", "--hidden-size", "32")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    assert model.config.model_type == "qwen2" and model.config.num_hidden_layers == 1
    for tag in ("<think>", "</think>", "<tool_call>", "</tool_call>"):
        assert len(tok.tokenize(tag)) == 1
    assert tok.decode(tok("<think>a</think>")["input_ids"]) == "<think>a</think>"
    assert tok.eos_token == "<|im_end|>" and tok.chat_template


def test_stats_and_convert_report_bad_rows(tmp_path, tiny_model_dir):
    data = tmp_path / "d.jsonl"
    write_sample(data, n=5)
    with open(data, "a") as f:
        f.write('{"id": 9, "query": "q", "tools": "[oops", "answers": "[]"}\n')
    failed = run("stats", data, "--tokenizer", tiny_model_dir, check=False)
    assert failed.returncode == 2 and f"{data}:6" in failed.stderr and "--skip-invalid" in failed.stderr
    st = json.loads(run("stats", data, "--tokenizer", tiny_model_dir, "--json", "--skip-invalid").stdout)
    assert st["rows"] == 5 and st["rejected"] == 1
    assert (tmp_path / "d.jsonl.rejected.jsonl").exists()
    out = tmp_path / "o" / "chat.jsonl"
    run("convert", data, "--out", out, "--to", "openai", "--skip-invalid")
    assert len(out.read_text().splitlines()) == 5
    (rej,) = [json.loads(l) for l in (tmp_path / "o" / "chat.jsonl.rejected.jsonl").read_text().splitlines()]
    assert rej["where"] == f"{data}:6" and "'tools' is not valid JSON" in rej["reason"]
    # its own file: a clean conversion into a refine folder leaves refine's rejected.jsonl as it is (probe)
    (tmp_path / "o" / "rejected.jsonl").write_text("refine's\n")
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(data.read_text().splitlines(keepends=True)[:5]))
    run("convert", clean, "--out", tmp_path / "o" / "kept.openai.jsonl", "--to", "openai", "--skip-invalid")
    assert (tmp_path / "o" / "rejected.jsonl").read_text() == "refine's\n" and not (tmp_path / "o" / "kept.openai.jsonl.rejected.jsonl").exists()
    # issue 15 M6 / M9 / M5: a bad row leaves no partial output; a missing file is "no such file" at once
    # (not a minute of hub retries); a folder as --out is one line
    stopped = run("convert", data, "--out", tmp_path / "p" / "part.jsonl", check=False)
    assert stopped.returncode == 2 and "nothing was written" in stopped.stderr and not list((tmp_path / "p").iterdir())
    missing = run("convert", tmp_path / "missing.jsonl", "--out", tmp_path / "m.jsonl", check=False)
    assert missing.returncode == 2 and "missing.jsonl: no such file" in missing.stderr and "--skip-invalid" not in missing.stderr
    assert "huggingface" not in missing.stderr and "Retrying" not in missing.stderr and not (tmp_path / "m.jsonl").exists()
    folder = run("convert", data, "--out", tmp_path, "--skip-invalid", check=False)
    assert folder.returncode == 2 and "is a folder" in folder.stderr and "Traceback" not in folder.stderr


def test_demo_on_the_real_model_writes_a_before_after_report(tmp_path, smollm2_dir):
    """The demo's every stage on SmolLM2-135M-Instruct, at a scale the suite affords (`make demo`
    runs the defaults; its figures are in the README)."""
    from rich.console import Console

    from funreason.demo import DemoConfig, run_demo

    d = tmp_path / "demo"
    cfg = DemoConfig(out=str(d), model=str(smollm2_dir), xlam_rows=24, open_rows=16, irrelevance_rows=4,
                     train=dataclasses.replace(DemoConfig().train, max_steps=2, batch_size=1),
                     bfcl_categories=("simple_python", "irrelevance"),
                     bfcl_limit=2, heldout_limit=2, max_tokens=24, self_refine=True, refine_queries=3, refine_samples=1, refine_steps=1,
                     conversation_rows=2, heldout_conversations=1)
    console = Console(record=True, width=120)
    report = run_demo(cfg, console).read_text()
    for section in ("## Before and after", "## Segment statistics", "## FCDR funnel", "## SRML training",
                    "## Self-refinement round", "## Time per stage", "rule program", "--endpoint"):
        assert section in report, section
    assert "| base model | 0.0 | 100.0 |" in report  # the base model writes prose: no call, no simple_python
    rows = [json.loads(line) for line in (d / "data" / "train.jsonl").read_text().splitlines()]
    irrelevant = [r for r in rows if r["id"].endswith("-irrelevance") and r["meta"]["source"] == "xlam"]
    assert 0 < len(irrelevant) <= 4 and len(rows) == 40 + len(irrelevant) + 2
    assert [r["meta"].get("conversation") for r in rows[-2:]] == ["whole", "whole"]  # two whole conversations trained on
    assert f"| input rows | {len(rows)} |" in report
    fcdr = sum(len((d / "fcdr" / f"{k}.jsonl").read_text().splitlines()) for k in ("kept", "dropped", "hard", "rejected", "errors"))
    assert fcdr == len(rows)
    # held out: the sample's last rows and the open data's held-out rows, none of them trained on
    held = [json.loads(line)["id"] for line in (d / "data" / "heldout.jsonl").read_text().splitlines()]
    trained_ids = {json.loads(line)["id"] for line in (d / "data" / "train.jsonl").read_text().splitlines()}
    assert len(held) == 5 and not set(held) & trained_ids
    # the held-out conversation (2 assistant turns: a call, then the reply to its result) is asked at each turn, and the report and console
    # give each model's exact calls per turn with the 95% interval
    per_turn = json.loads((d / "eval" / "base" / "metrics.json").read_text())["heldout"]["per_turn"]
    assert list(per_turn) == ["1", "2"] and all(t["total"] == 1 for t in per_turn.values())
    assert "| assistant turn | base model | SRML-trained | after self-refinement |" in report
    for k in (1, 2):
        assert f"| {k} | {per_turn[str(k)]['correct']}/1 [" in report
    assert "exact calls per assistant turn" in console.export_text()
    kept = [json.loads(line) for line in (d / "fcdr" / "kept.jsonl").read_text().splitlines()]
    assert all(r["reasoning"] for r in kept)  # the teacher wrote it where the data had none
    table = json.loads((d / "before_after.json").read_text())
    assert list(table["rows"]) == ["base model", "SRML-trained", "after self-refinement"]
    assert {"BFCL AST", "BFCL with irrelevance", "held-out xLAM-style", "held-out open", "held-out conversation turns"} <= set(table["columns"])
    assert (d / "before_after.png").read_bytes()[:4] == b"\x89PNG" and (d / "curves.png").read_bytes()[:4] == b"\x89PNG"
    rounds = json.loads((d / "self-refine" / "rounds.json").read_text())
    assert [r["round"] for r in rounds] == [0, 1] and rounds[1]["rollouts"]["samples"] >= 3
    assert (d / "train" / "final" / "model.safetensors").exists()


def test_demo_never_touches_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "myproject"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "customers.jsonl").write_text("{}\n")
    proc = run("demo", "--out", mine, check=False)
    assert proc.returncode == 2 and "has files that the demo did not make" in proc.stderr and "Traceback" not in proc.stderr
    assert (mine / "data" / "customers.jsonl").read_text() == "{}\n"
    # an earlier demo's folder: its parts and its report go before a new run (a failed run leaves no old report looking
    # current); the model it fetched stays
    from funreason.demo import MARKER, prepare_out

    earlier = tmp_path / "demo"
    (earlier / "model").mkdir(parents=True)
    (earlier / MARKER).write_text("made by funreason demo\n")
    for name in ("report.md", "before_after.json", "curves.png"):
        (earlier / name).write_text("old")
    prepare_out(earlier)
    assert sorted(p.name for p in earlier.iterdir()) == [MARKER, "model"]


def test_a_mistyped_model_folder_is_one_line_not_a_hub_download(tmp_path):
    # `runs/srml/final` misspelt used to go to the model hub, with most of a minute of retries
    missing = str(tmp_path / "runs" / "srml" / "fnial")
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["eval", "bfcl", "--model", missing, "--out", str(tmp_path / "e"), "--limit", "1"],
                 ["eval", "humaneval", "--model", missing, "--out", str(tmp_path / "h"), "--limit", "1"],
                 ["train", "--model", "runs/srml/fnial", "--data", str(SAMPLE), "--out", str(tmp_path / "t")],
                 ["serve", "--model", missing],
                 ["eval", "bfcl", "--model", str(empty), "--out", str(tmp_path / "e2"), "--limit", "1"]):
        proc = run(*args, check=False)
        assert proc.returncode == 2 and ("no such model folder" in proc.stderr or "not a model folder" in proc.stderr), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    # issue 15 M5: a folder whose config.json is no model config, and bad numbers, are one line too
    notmodel = tmp_path / "notmodel"
    notmodel.mkdir()
    (notmodel / "config.json").write_text("hello\n")
    afile = tmp_path / "afile"
    afile.write_text("x")
    for args, said in ((["serve", "--model", str(notmodel)], "not a JSON model config"),
                       (["eval", "bfcl", "--model", str(notmodel), "--out", str(tmp_path / "e3"), "--limit", "1"], "not a JSON model config"),
                       (["eval", "bfcl", "--model", str(empty), "--out", str(tmp_path / "e4"), "--batch", "0"], "--batch, --concurrency"),
                       (["eval", "bfcl", "--model", str(empty), "--out", str(afile), "--limit", "1"], "is a file; give a folder"),
                       (["serve", "--model", str(empty), "--port", "99999"], "--port must lie in 1..65535")):
        proc = run(*args, check=False)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)


def test_help_keeps_every_default_it_states():
    # "[default: …]" in our help texts was read by Rich as a markup tag and vanished from --help
    env = {**os.environ, "COLUMNS": "250"}
    for args, default in ((["eval", "bfcl", "--help"], "(default: every single-turn one;"),
                          (["stats", "--help"], "(default: the bundled sample)"), (["train", "--help"], "(default: 0.5)")):
        proc = subprocess.run([sys.executable, "-m", "funreason.cli", *args], capture_output=True, text=True, env=env)
        assert proc.returncode == 0 and default in proc.stdout, (args, proc.stdout[-1500:])



def test_writers_on_a_full_disk_say_so_in_one_line_and_leave_nothing_that_looks_valid(tmp_path):
    """`sample` and `tiny-model` whose writes fail part-way (M5, M6)."""
    for args, out in ((["sample", "--out", tmp_path / "s.jsonl", "-n", "2000"], tmp_path / "s.jsonl"),
                      (["tiny-model", "--out", tmp_path / "tm"], tmp_path / "tm")):
        proc = subprocess.run([sys.executable, "-m", "funreason.cli", *map(str, args)], capture_output=True, text=True, timeout=300,
                              preexec_fn=file_size_limit(100_000))
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        assert proc.returncode == 2 and lines[-1].startswith("error:") and "File too large" in lines[-1], proc.stderr[-1500:]
        assert "Traceback" not in proc.stderr and not out.exists(), args
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


def test_ordinary_mistakes_are_one_error_line_with_exit_2(tmp_path, tiny_model_dir):
    """M5: a read-only target, an empty --teacher folder, a --problems file that is not HumanEval's."""
    (tmp_path / "arr.json").write_text("[1, 2]\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "one.jsonl").write_text('{"id": "a", "query": "q", "tools": "[]", "answers": "[]"}\n')
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.md").write_text("mine\n")
    (tmp_path / "latin1.txt").write_bytes("first line\ncaf\u00e9\n".encode("latin-1"))
    (tmp_path / "fake.jsonl.gz").write_bytes(b"not gzip at all\n")
    for name, text in (("torn", '{"categories": {'), ("foreign", "{}")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.json").write_text(text)
    cases = [
        (["sample", "--out", "/proc/version"], "/proc/version"),
        (["sample", "--out", tmp_path / "s.jsonl", "-n", "0"], "-n must be 1 or more"),
        (["sample", "--out", tmp_path / "s.jsonl", "--kind", "phrase"], "--kind phrase: one of mixed, parallel, no-fit, phrased, optional"),
        (["tiny-model", "--out", "/proc/x/model"], "/proc/x"),
        (["tiny-model", "--out", tmp_path / "taken"], "not an empty folder or an earlier tiny model"),
        (["refine", tmp_path / "one.jsonl", "--out", tmp_path / "r", "--teacher", tmp_path / "empty"], "not a model folder"),
        (["eval", "humaneval", "--model", tiny_model_dir, "--problems", tmp_path / "arr.json", "--out", tmp_path / "he"],
         "arr.json:1: a HumanEval problem is a JSON object"),
        # probe: each of these was a traceback, or an error that named no file
        (["tiny-model", "--out", tmp_path / "tm", "--corpus", tmp_path / "latin1.txt"], "latin1.txt:2: not UTF-8 text (byte 0xe9"),
        (["eval", "humaneval", "--model", tiny_model_dir, "--problems", tmp_path / "latin1.txt", "--out", tmp_path / "he"],
         "latin1.txt: not HumanEval's JSON lines"),
        (["eval", "humaneval", "--model", tiny_model_dir, "--problems", tmp_path / "fake.jsonl.gz", "--out", tmp_path / "he"],
         "fake.jsonl.gz: not HumanEval's gzipped JSON lines"),
        (["eval", "compare", tmp_path / "torn"], "torn/report.json: not JSON"),
        (["eval", "compare", tmp_path / "foreign"], "foreign/report.json: not an eval bfcl report"),
        (["stats", tmp_path / "one.jsonl", "--config", tmp_path / "latin1.txt"], "latin1.txt: not UTF-8 text (byte 0xe9"),
        (["self-refine", "--model", tiny_model_dir, "--data", tmp_path / "one.jsonl", "--out", tmp_path / "sr", "--judge-endpoint",
          "http://127.0.0.1:9/v1", "--judge-model", "J", "--hard", tmp_path / "one.jsonl"], "one.jsonl:1: not a row of FCDR's hard.jsonl"),
    ]
    from typer.testing import CliRunner

    from funreason.cli import app

    for args, said in cases:  # in this process: each verb's own handling, without the start-up cost
        result = CliRunner().invoke(app, list(map(str, args)))
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        assert result.exit_code == 2 and lines and lines[-1].startswith("error:") and said in lines[-1], (args, result.stderr[-1500:])
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "finished work is kept" not in result.stderr, (args, "refused before it began: there is no work to keep")
    assert (tmp_path / "taken" / "notes.md").read_text() == "mine\n"
    assert not (tmp_path / "sr").exists(), "self-refine claimed its folder before reading its hard rows"


def test_settings_that_would_be_dropped_or_found_wrong_late_are_one_error_line_before_anything_runs(tmp_path, tiny_model_dir):
    """Probe: self-refine checked its `train:` section only after round 0's evaluation and round 1's
    rollouts, and recorded it in the run folder, so the mended command was refused; options that
    one kind of backend or mode never reads were dropped without a word."""
    data = tmp_path / "d.jsonl"
    write_sample(data, 2, 0)
    (tmp_path / "t.jinja").write_text("{{ messages }}")
    (tmp_path / "own.yaml").write_text("train: {out: mine}\n")
    (tmp_path / "teacher.yaml").write_text("teacher: {endpoints: [http://127.0.0.1:9/v1], served_model: T, concurrency: 4}\n")
    sr = ["self-refine", "--model", tiny_model_dir, "--data", data, "--out", tmp_path / "sr", "--judge-endpoint", "http://127.0.0.1:9/v1",
          "--judge-model", "J"]
    local_judge = ["self-refine", "--model", tiny_model_dir, "--data", data, "--out", tmp_path / "sr", "--judge", tiny_model_dir]
    train = ["train", "--model", tiny_model_dir, "--data", data, "--out", tmp_path / "tr"]
    cases = [
        (sr + ["--alpha", "2"], "train: --alpha must lie in [0, 1], not 2.0"),
        (sr + ["--config", tmp_path / "own.yaml"], "train: out are set by each round"),
        (sr + ["--eval-categories", "multi_turn_base"], "--eval-categories: multi_turn_base cannot be scored each round"),
        (sr + ["--eval-categories", "simple_python,live_simple"], "--eval-categories: live_simple cannot be scored each round (a round reads dev"),
        (sr + ["--limit", "0"], "--limit and --eval-limit must be 1 or more"),
        (local_judge + ["--judge-model", "J"], "--judge-model names the model the judge endpoints serve"),
        (train + ["--lora-layers", "4"], "--lora-layers 4 places LoRA adapters; it needs --lora N"),
        (train + ["--full", "--lora", "16"], "--full trains every weight; lora 16 (given here or in --config) asks for LoRA adapters"),
        (train + ["--loss", "sft", "--alpha", "0.9"], "--loss sft has none to weigh"),
        (["refine", data, "--out", tmp_path / "r", "--config", tmp_path / "teacher.yaml"], "teacher: concurrency 4 is not read"),
        (["eval", "bfcl", "--endpoint", "http://127.0.0.1:9/v1", "--served-model", "S", "--chat-template", tmp_path / "t.jinja",
          "--out", tmp_path / "e"], "a chat template is used by a local model run with transformers"),
        (["eval", "bfcl", "--model", tiny_model_dir, "--served-model", "S", "--out", tmp_path / "e"], "--served-model names the model an endpoint serves"),
        (["serve", "--model", tiny_model_dir, "--max-prompt-tokens", "-5"], "--max-prompt-tokens must be 1 or more, not -5"),
    ]
    from typer.testing import CliRunner

    from funreason.cli import app

    for args, said in cases:
        result = CliRunner().invoke(app, list(map(str, args)))
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        assert result.exit_code == 2 and lines and lines[-1].startswith("error:") and said in " ".join(lines), (args, result.stderr[-1500:])
    assert not [p.name for p in tmp_path.iterdir() if p.name in ("sr", "tr", "r", "e")], "a refused run left a folder"


def test_a_verb_reads_its_settings_from_yaml_nested_sections_included(tmp_path):
    """refine's YAML holds its teacher as a section; the command line overrides the file; an unknown
    key, even in a section, is one error line naming the file and the key, before anything runs."""
    from funreason.config import load_config
    from funreason.fcdr.runner import RefineConfig

    good = tmp_path / "refine.yaml"
    good.write_text("out: refined\nconcurrency: 128\nshard: [1, 4]\n"
                    "teacher: {endpoints: [http://127.0.0.1:8001/v1], served_model: QwQ, timeout: 600}\n")
    cfg = load_config(RefineConfig, good, {"input": "xlam.json", "teacher.timeout": 30.0})
    assert (cfg.out, cfg.concurrency, cfg.shard) == ("refined", 128, (1, 4))
    assert (cfg.teacher.endpoints, cfg.teacher.served_model, cfg.teacher.timeout) == (["http://127.0.0.1:8001/v1"], "QwQ", 30.0)
    data = tmp_path / "in.jsonl"
    write_sample(data, 2, 0)
    bad = tmp_path / "bad.yaml"
    bad.write_text("out: o\nteacher: {endpoint: http://x, served_model: QwQ}\n")
    proc = run("refine", data, "--config", bad, check=False)
    assert proc.returncode == 2 and f"{bad}: teacher: unknown settings endpoint" in proc.stderr and not (tmp_path / "o").exists()
    # a value of the wrong type in a nested section is named the same way
    bad.write_text("out: o\nteacher: {endpoints: [http://x], served_model: QwQ, retries: many}\n")
    proc = run("refine", data, "--config", bad, check=False)
    assert proc.returncode == 2 and f"{bad}: teacher: retries: expected a whole number" in proc.stderr


def test_a_nested_section_given_in_part_keeps_the_verbs_own_defaults_for_the_rest(tmp_path):
    """Probe: `self-refine --lora 64` (or `train: {lora: 64}` in its YAML) rebuilt the round's training
    from TrainConfig's defaults, so the round trained at 2e-5, not the 1e-5 the help shows, reported
    to TensorBoard and stopped at one bad row of --base-data."""
    from funreason.config import load_config
    from funreason.selfrefine import SelfRefineConfig, round_training

    own = round_training()
    yaml_file = tmp_path / "sr.yaml"
    yaml_file.write_text("out: o\ntrain: {lora: 64}\n")
    for cfg in (load_config(SelfRefineConfig, None, {"train.lora": 64}), load_config(SelfRefineConfig, yaml_file, {}),
                load_config(SelfRefineConfig, yaml_file, {"train.max_steps": 9})):
        assert cfg.train.lora == 64
        assert (cfg.train.loss, cfg.train.learning_rate, cfg.train.report_to, cfg.train.skip_invalid) == \
            (own.loss, own.learning_rate, own.report_to, own.skip_invalid) == ("srml", 1e-5, "none", True)
    assert load_config(SelfRefineConfig, yaml_file, {"train.max_steps": 9}).train.max_steps == 9


def test_a_comma_separated_options_default_is_shown_as_it_is_typed():
    """`data mix --help` showed `seal-tools/toolrl/glaive/ste`, which the option refuses as one unknown source."""
    from typer.testing import CliRunner

    from funreason.cli import app
    from funreason.data.mix import MixConfig

    shown = CliRunner().invoke(app, ["data", "mix", "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}).output
    assert f"(default: {','.join(MixConfig().sources)})" in " ".join(shown.split())


def test_a_settings_file_that_gives_a_key_twice_is_refused_with_its_line(tmp_path):
    """Review L8: YAML keeps the last of two equal keys silently (max_steps 2, then 2000)."""
    from funreason.config import read_yaml

    twice = tmp_path / "twice.yaml"
    twice.write_text("max_steps: 2\nlora: 8\nmax_steps: 2000\n")
    with pytest.raises(ValueError, match=r"twice.yaml: not valid YAML \(line 3: 'max_steps' is given twice\)"):
        read_yaml(twice)
    nested = tmp_path / "nested.yaml"
    nested.write_text("train:\n  lora: 8\n  lora: 16\nrounds: 2\n")
    with pytest.raises(ValueError, match="line 3: 'lora' is given twice"):
        read_yaml(nested)
    fine = tmp_path / "fine.yaml"
    fine.write_text("train:\n  lora: 8\nlora: 16\n")  # the same name in two mappings is two settings
    assert read_yaml(fine) == {"train": {"lora": 8}, "lora": 16}
