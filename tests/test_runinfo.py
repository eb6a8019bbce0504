"""Run records: a folder's results belong to one run, and a model is known by all of its bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from funreason import runinfo
from funreason.runinfo import RunMismatch, claim, model_identity


def checkpoint(folder, payload: bytes):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    (folder / "model.safetensors").write_bytes(payload)
    return folder


def test_a_model_retrained_in_place_is_another_model_even_where_only_its_middle_changed(tmp_path, monkeypatch):
    # a LoRA recipe on a model's middle layers changes bytes far from either end of the weight file:
    # a fingerprint of the first and last MiB kept the old identity, and old answers were reused
    monkeypatch.setenv("FUNREASON_CACHE", str(tmp_path / "cache"))
    size = 6 << 20
    before = bytearray(os.urandom(size))
    model = checkpoint(tmp_path / "final", bytes(before))
    first = model_identity(str(model))
    before[size // 2] ^= 0xFF  # one byte in the middle, the size the same
    checkpoint(model, bytes(before))
    second = model_identity(str(model))
    assert first["model"] == second["model"] and first["fingerprint"] != second["fingerprint"]
    out = tmp_path / "eval"
    claim(out, {"verb": "eval bfcl", **first}, [])
    with pytest.raises(RunMismatch, match="holds results of another run of eval bfcl"):
        claim(out, {"verb": "eval bfcl", **second}, [])


def test_an_unchanged_checkpoint_is_read_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FUNREASON_CACHE", str(tmp_path / "cache"))
    model = checkpoint(tmp_path / "final", os.urandom(3 << 20))
    read = []
    real = runinfo.file_sha256
    monkeypatch.setattr(runinfo, "file_sha256", lambda p: read.append(p.name) or real(p))
    assert model_identity(str(model)) == model_identity(str(model))
    assert sorted(read) == ["config.json", "model.safetensors"]  # the second identity came from the cache


def test_evaluation_verbs_share_a_folder_and_other_verbs_keep_theirs(tmp_path):
    # the README's recipe: eval bfcl and eval humaneval of one model into one folder, then eval compare
    out = tmp_path / "eval" / "base"
    bfcl = {"verb": "eval bfcl", "model": "m", "mode": "prompting"}
    humaneval = {"verb": "eval humaneval", "model": "m", "max_tokens": 512}
    claim(out, bfcl, [])
    claim(out, humaneval, [])
    claim(out, bfcl, [])  # each resumes against its own record
    with pytest.raises(RunMismatch, match="holds results of another run of eval bfcl"):
        claim(out, {**bfcl, "mode": "native"}, [])
    with pytest.raises(RunMismatch, match="is a `eval bfcl` output folder; choose another --out for `train`"):
        claim(out, {"verb": "train", "model": "m"}, [])
    refine = tmp_path / "refined"
    claim(refine, {"verb": "refine", "input_sha256": "x"}, [])
    with pytest.raises(RunMismatch, match="is a `refine` output folder"):
        claim(refine, {"verb": "eval bfcl", "model": "m"}, [])


def test_a_second_writer_of_a_run_folder_is_refused_while_the_first_runs(tmp_path):
    out = tmp_path / "refined"
    held = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from funreason.runinfo import claim\n"
        f"claim(Path({str(out)!r}), {{'verb': 'refine', 'input_sha256': 'x'}}, []); print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout.readline().strip() == "held"
        with pytest.raises(RunMismatch, match=rf"is being written by pid {held.pid}; wait for it to finish"):
            claim(out, {"verb": "refine", "input_sha256": "x"}, [])
    finally:
        held.kill()
        held.wait()
    claim(out, {"verb": "refine", "input_sha256": "x"}, [])  # the lock went with its process


def test_a_verb_called_from_python_gives_its_folder_back_when_it_returns(tmp_path):
    from funreason.runinfo import releases_folders

    out = tmp_path / "refined"

    @releases_folders
    def verb() -> None:
        claim(out, {"verb": "refine", "input_sha256": "x"}, [])

    verb()
    # another process (the CLI after a notebook's run) may now write the folder: the lock left with the call
    other = subprocess.run([sys.executable, "-c", (
        "from pathlib import Path; from funreason.runinfo import claim\n"
        f"claim(Path({str(out)!r}), {{'verb': 'refine', 'input_sha256': 'x'}}, []); print('claimed')")],
        capture_output=True, text=True, timeout=120)
    assert other.stdout.strip() == "claimed", other.stderr
