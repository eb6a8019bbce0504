"""BFCL's dev/test registry, `eval bfcl --split`, the test ledger and the intervals every report gives."""

from __future__ import annotations

import json
import re
import sys

import pytest
from conftest import funreason

from funreason.evaluate.splits import REGISTRY, build_registry, load_registry, mean_interval, wilson


def test_the_committed_registry_is_the_rule_applied_to_the_installed_bfcl():
    held = json.loads(REGISTRY.read_text())
    built = build_registry()
    assert held["categories"] == built["categories"] and held["dev_sha256"] == built["dev_sha256"]
    reg = load_registry()
    assert reg.split_of("simple_python_299") == "dev" and reg.split_of("simple_python_300") == "test"
    assert reg.split_of("irrelevance_199") == "dev" and reg.split_of("irrelevance_200") == "test"
    assert reg.split_of("live_simple_0-0-0") == "test" and reg.split_of("multi_turn_base_0") == "test"
    assert reg.categories["parallel"].test_count == 0 and reg.categories["live_multiple"].dev == frozenset()


def test_an_edited_registry_is_refused(tmp_path):
    held = json.loads(REGISTRY.read_text())
    held["categories"]["simple_python"]["dev"].remove("simple_python_5")  # an entry quietly made test
    path = tmp_path / "r.json"
    path.write_text(json.dumps(held))
    with pytest.raises(ValueError, match="edited by hand"):
        load_registry(path)


def test_wilson_matches_the_readme():
    lo, hi = wilson(76, 100)
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (66.8, 83.3) and wilson(0, 0) is None


def test_an_aggregate_interval_is_never_narrower_than_the_pooled_entries_allow():
    """Four multi-turn categories of one entry each, all wrong, printed [0.0, 21.5]: the normal
    approximation over one-entry parts, narrower than 0 of 4 entries allows ([0.0, 49.0]). With a
    hundred entries per part the two differ by a fraction of a point, and the wider is given."""
    lo, hi = mean_interval([(0.0, 1)] * 4)
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (0.0, 49.0) == tuple(round(100 * x, 1) for x in wilson(0, 4))
    parts = [(0.76, 100), (0.5, 100), (0.45, 100), (0.43, 100)]
    lo, hi = mean_interval(parts)
    mean = sum(p for p, _ in parts) / 4
    half = 1.96 * sum((((p * n + 2) / (n + 4)) * (1 - (p * n + 2) / (n + 4)) / (n + 4)) / 16 for p, n in parts) ** 0.5
    assert lo <= mean - half and hi >= mean + half and (lo, hi) == pytest.approx((mean - half, mean + half), abs=0.005)
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (48.6, 58.3)  # the README's dev Non-Live AST row, 53.5 over 400 entries
    # parts of unequal size, equally weighted: the floor is the effective count's (about 5.3), not the 103 entries'
    lo, hi = mean_interval([(0.0, 100), (0.0, 1), (0.0, 1), (0.0, 1)])
    effective = 1 / (1 / 16 * (1 / 100 + 3))
    assert lo == 0.0 and hi == pytest.approx(3.8416 / (effective + 3.8416)) and hi > 0.4


def test_split_test_scores_only_unstudied_entries_and_writes_the_ledger(tmp_path, tiny_model_dir):
    ledger = tmp_path / "ledger.jsonl"
    out = tmp_path / "test"
    proc = funreason("eval", "bfcl", "--model", tiny_model_dir, "--out", out, "--split", "test", "--categories", "simple_python,irrelevance",
                     "--limit", 2, "--max-tokens", 8, "--ledger", ledger)
    ids = sorted(json.loads(l)["id"] for c in ("simple_python", "irrelevance") for l in (out / f"BFCL_v4_{c}_result.json").read_text().splitlines())
    assert ids == ["irrelevance_200", "irrelevance_201", "simple_python_300", "simple_python_301"]
    (line,) = map(json.loads, ledger.read_text().splitlines())
    assert line["split"] == "test" and line["test_entries"] == 4 and line["fingerprint"] and line["commit"] and line["settings"]["max_tokens"] == 8
    assert set(line["categories"]) == {"simple_python", "irrelevance"} and "recorded in" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "test" and report["entries"] == 4 and len(report["categories"]["simple_python"]["interval"]) == 2
    assert "split: **test**, 4 entries" in (out / "report.md").read_text()
    # dev entries are not a look at the test set: no line; a category without dev entries is refused by name
    funreason("eval", "bfcl", "--model", tiny_model_dir, "--out", tmp_path / "dev", "--categories", "simple_python", "--limit", 1,
              "--max-tokens", 8, "--ledger", ledger)
    assert len(ledger.read_text().splitlines()) == 1
    refused = funreason("eval", "bfcl", "--model", tiny_model_dir, "--out", tmp_path / "x", "--categories", "live_simple", "--limit", 1,
                        "--ledger", ledger, check=False)
    assert refused.returncode == 2 and "no dev entries of live_simple" in refused.stderr
    shown = funreason("eval", "compare", out, tmp_path / "dev", "--out", tmp_path / "c.png")
    assert "test, 4" in shown.stdout and "dev, 1" in shown.stdout and "[" in shown.stdout


def test_split_test_over_the_default_categories_needs_no_java_grammar(tmp_path, tiny_model_dir, monkeypatch):
    """Probe: the README's `eval bfcl --split test` failed without `funreason[bfcl-langs]`, though
    simple_java and simple_javascript have no test entries and are left out of that run. The
    grammars' absence is caused by making their modules unimportable."""
    from funreason.evaluate.bfcl_langs import EXTRA_HINT
    from funreason.evaluate.bfcl_run import EvalBfclConfig

    for name in ("tree_sitter", "tree_sitter_java", "tree_sitter_javascript"):
        monkeypatch.setitem(sys.modules, name, None)
    reg = load_registry()
    assert reg.categories["simple_java"].count("test") == reg.categories["simple_javascript"].count("test") == 0
    EvalBfclConfig(model=str(tiny_model_dir), out=str(tmp_path / "t"), split="test").validate()
    with pytest.raises(ValueError, match=re.escape(EXTRA_HINT)):
        EvalBfclConfig(model=str(tiny_model_dir), out=str(tmp_path / "d")).validate()  # dev holds Java entries
    with pytest.raises(ValueError, match=re.escape(EXTRA_HINT)):  # named, they are checked as before
        EvalBfclConfig(model=str(tiny_model_dir), out=str(tmp_path / "n"), split="test", categories=["simple_java"]).validate()


def test_a_rounds_evaluation_reads_dev_entries_only(tmp_path, tiny_model_dir):
    """Probe: self-refine's and the demo's evaluation (`evaluate_model`) read whole categories, so a
    round without --eval-limit scored simple_python's 100 and irrelevance's 40 test entries each time, in no ledger."""
    from funreason.evaluate.heldout import evaluate_model

    reg = load_registry()
    m = evaluate_model(str(tiny_model_dir), tmp_path / "ev", categories=["irrelevance"], limit=None, eval_data=None, max_tokens=1, batch=40)
    assert m.split == "dev" and m.bfcl["irrelevance"]["total"] == reg.categories["irrelevance"].count("dev") == 200
    scored = [json.loads(line)["id"] for line in (tmp_path / "ev" / "BFCL_v4_irrelevance_result.json").read_text().splitlines()]
    assert len(scored) == 200 and {reg.split_of(i) for i in scored} == {"dev"}
    assert m.bfcl_line().endswith("(dev, 200)") and "[" in m.bfcl_line()


def test_a_rounds_evaluation_folder_from_before_splits_resumes_while_its_entries_are_all_dev(tmp_path, tiny_model_dir):
    """Within the dev entries (the first of each category) a folder claimed before the split was
    recorded holds the entries a run now scores, so it resumes; past them it is refused."""
    from funreason.evaluate.heldout import evaluate_model
    from funreason.runinfo import RUN_FILE, RunMismatch, model_identity

    for limit, resumes in ((2, True), (None, False)):
        out = tmp_path / f"ev-{limit}"
        out.mkdir()
        (out / RUN_FILE).write_text(json.dumps({"verb": "evaluate", **model_identity(str(tiny_model_dir)), "categories": ["irrelevance"],
                                                "limit": limit, "eval_data": None, "max_tokens": 1}))  # as a run before splits wrote it
        if resumes:
            m = evaluate_model(str(tiny_model_dir), out, categories=["irrelevance"], limit=limit, eval_data=None, max_tokens=1)
            assert m.bfcl["irrelevance"]["total"] == 2
        else:
            with pytest.raises(RunMismatch, match="split: None there, 'dev' now"):
                evaluate_model(str(tiny_model_dir), out, categories=["irrelevance"], limit=limit, eval_data=None, max_tokens=1)
