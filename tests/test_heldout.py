"""`funreason eval heldout`: exact-call accuracy on a split, written row by row, so a run stopped
midway resumes with the rows it finished; a folder made with other settings is refused."""

from __future__ import annotations

import json

from conftest import JOKE, PARIS, TOOLS, funreason

OSLO = [{"role": "user", "content": "Weather in Oslo?"}]
SPLIT = [
    {"id": "paris", "messages": PARIS + [{"role": "assistant", "content": "[get_weather(city='Paris')]"}], "tools": TOOLS},
    {"id": "joke", "messages": JOKE + [{"role": "assistant", "content": "I can only look up the weather."}], "tools": TOOLS},
    {"id": "oslo", "messages": OSLO + [{"role": "assistant", "content": "[get_weather(city='Oslo')]"}], "tools": TOOLS},
]


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_an_interrupted_run_resumes_with_the_rows_it_finished(tmp_path, trained_tiny_model_dir):
    split = tmp_path / "heldout.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in SPLIT))
    out = tmp_path / "eval"
    args = ["eval", "heldout", split, "--model", trained_tiny_model_dir, "--max-tokens", "24", "--batch", "2", "--out", out]
    proc = funreason(*args)
    first = rows(out / "heldout_results.jsonl")
    # the model learnt the Paris call and the joke's refusal, not Oslo (it says Paris there too)
    assert [(r["row"], r["id"], r["correct"]) for r in first] == [(0, "paris", True), (1, "joke", True), (2, "oslo", False)]
    assert "2/3" in proc.stdout and json.loads((out / "heldout.json").read_text())["correct"] == 2

    # a run killed after two answers: Oslo's answered as the reference (which this model never
    # writes), the joke not yet, and a line torn mid-write
    (out / "heldout.json").unlink()
    kept = [first[0], {**first[2], "output": "[get_weather(city='Oslo')]", "correct": False}]
    (out / "heldout_results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"row": 1, "id": "jo')
    proc = funreason(*args)
    again = rows(out / "heldout_results.jsonl")
    # the finished rows are kept (and scored again), only the joke is generated, the same as before
    assert [(r["row"], r["correct"], r["output"]) for r in again] == [
        (0, True, first[0]["output"]), (1, True, first[1]["output"]), (2, True, "[get_weather(city='Oslo')]")]
    assert "3/3" in proc.stdout


def test_a_folder_made_with_other_settings_is_refused(tmp_path, trained_tiny_model_dir):
    split = tmp_path / "heldout.jsonl"
    split.write_text("".join(json.dumps(r) + "\n" for r in SPLIT))
    out = tmp_path / "eval"
    args = ["eval", "heldout", split, "--model", trained_tiny_model_dir, "--batch", "2", "--out", out]
    funreason(*args, "--max-tokens", "24")
    before = (out / "heldout_results.jsonl").read_text()
    proc = funreason(*args, "--max-tokens", "8", check=False)  # its answers would be cut elsewhere: not reused
    assert proc.returncode != 0 and "max_tokens" in proc.stderr + proc.stdout
    assert (out / "heldout_results.jsonl").read_text() == before
    split.write_text("".join(json.dumps(r) + "\n" for r in SPLIT[:2]))  # another split into the same folder
    proc = funreason(*args, "--max-tokens", "24", check=False)
    assert proc.returncode != 0 and "data_sha256" in proc.stderr + proc.stdout
