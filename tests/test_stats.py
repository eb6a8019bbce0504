"""`funreason stats`: the paper's Table 1 (think / result segment tokens) for any dataset."""

from __future__ import annotations

import json

from conftest import SAMPLE, funreason as run

from funreason.data.synth import generate


def test_stats_json_on_the_bundled_sample(tiny_model_dir):
    st = json.loads(run("stats", "--tokenizer", tiny_model_dir, "--json").stdout)
    rows = generate(300, seed=0)
    assert st["rows"] == 300 and st["rejected"] == 0
    assert st["no_reasoning"] == sum("reasoning" not in r for r in rows)
    assert st["no_call"] == sum(not r["answers"].startswith("[") or r["answers"] == "[]" for r in rows)
    assert st["think"]["count"] == 300 - st["no_reasoning"] and st["result"]["count"] == 300
    assert st["think"]["mean"] > st["result"]["mean"] > 0
    assert st["think"]["median"] <= st["think"]["p90"] <= st["think"]["max"]
    table = run("stats", SAMPLE, "--tokenizer", tiny_model_dir).stdout
    assert "think" in table and "result" in table and "could not be parsed 0" in table
