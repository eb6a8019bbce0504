"""`funreason train` on the tiny model: SFT and SRML, LoRA and full, resume, bad data, plots."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, TrainerCallback
from transformers.testing_utils import CaptureLogger

from conftest import SAMPLE, funreason

from funreason.errors import SchemaError
from funreason.formats import bfcl, read_examples, write_examples
from funreason.train.trainer import TrainConfig, cpu_bf16_warning, train


cli = funreason


def metrics(run):
    return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in l]


@pytest.mark.parametrize(
    "loss_args, lora_args",
    [
        (["--loss", "sft"], ["--full"]),
        (["--loss", "srml", "--alpha", "0.3"], ["--lora", "4"]),
        (["--loss", "srml", "--alpha-mode", "self"], ["--full"]),
        (["--loss", "sft"], ["--lora", "4", "--padding-free"]),
    ],
)
def test_train_cli_runs_twenty_steps(tmp_path, tiny_model_dir, loss_args, lora_args):
    run = tmp_path / "run"
    proc = cli("train", "--model", tiny_model_dir, "--data", SAMPLE, "--out", run, "--max-steps", 20, "--allow-benchmark-overlap",
               "--batch-size", 2, "--lr", "1e-3", "--logging-steps", 5, "--save-steps", 100, *loss_args, *lora_args)
    assert "trained 20 steps" in proc.stdout
    # M10: readable in a log file: one line per logging step, no raw dicts, bars or FutureWarnings
    assert [l.split(" · ")[0] for l in proc.stdout.splitlines() if l.startswith("step ")] == [f"step {i}/20" for i in (5, 10, 15, 20)]
    assert "{'" not in proc.stdout and "\r" not in proc.stdout + proc.stderr and "Warning" not in proc.stderr, proc.stderr[-1500:]
    logs = metrics(run)
    assert [m["step"] for m in logs] == [5, 10, 15, 20]
    assert all(m["tokens_per_s"] > 0 and m["think_loss"] > 0 and m["result_loss"] > 0 for m in logs)
    assert logs[-1]["loss"] < logs[0]["loss"]
    if "srml" in loss_args:
        assert all(0 < m["alpha"] < 1 for m in logs)
        if "0.3" in loss_args:
            assert all(m["alpha"] == 0.3 for m in logs)
    else:
        assert "alpha" not in logs[0]
    model = AutoModelForCausalLM.from_pretrained(run / "final")  # merged when LoRA
    assert model.config.model_type == "qwen2"
    assert (run / "adapter").exists() == ("--lora" in lora_args)
    assert list((run / "runs").glob("*/events.out.tfevents.*")), "TensorBoard logs"


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _cfg(model, out, **kw):
    settings = dict(model=str(model), data=str(SAMPLE), out=str(out), max_steps=20, batch_size=2,
                    learning_rate=1e-3, logging_steps=2, save_steps=5, alpha_mode="self", report_to="none",
                    allow_benchmark_overlap=True)  # the bundled sample mirrors BFCL definitions (docs/data.md)
    return TrainConfig(**{**settings, **kw})


def test_resume_gives_the_same_loss_curve(tmp_path, tiny_model_dir):
    """Full fine-tuning of a model whose head is tied to its embeddings (as SmolLM2's): the checkpoint
    stores the pair once, the resumed run continues the same curve and warns of no missing key."""
    full = tmp_path / "full"
    train(_cfg(tiny_model_dir, full), log=lambda *_: None)
    cut = tmp_path / "cut"
    first = train(_cfg(tiny_model_dir, cut), log=lambda *_: None, callbacks=[StopAt(10)])
    assert first.steps == 10 and not (cut / "final").exists()
    # a handler of the test's own on transformers' logger: its default one holds the stderr of import time
    with CaptureLogger(logging.getLogger("transformers")) as warned:
        train(_cfg(tiny_model_dir, cut, resume=True), log=lambda *_: None)
    assert "missing keys" not in warned.out, warned.out
    a, b = metrics(full), metrics(cut)
    assert [m["step"] for m in a] == [m["step"] for m in b] == list(range(2, 21, 2))
    for x, y in zip(a, b):
        for key in ("loss", "think_loss", "result_loss", "alpha"):
            assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-7), (x["step"], key)


class ProductDtypes(TrainerCallback):
    """Records the dtype of every linear layer's output and of every weight, during training."""

    def __init__(self):
        self.outputs, self.weights = set(), set()

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.register_forward_hook(lambda mod, inp, out: self.outputs.add(out.dtype))

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.weights |= {p.dtype for p in model.parameters()}


def test_a_cpu_without_bf16_instructions_is_warned_of():
    x86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {}\nbugs\t\t: spectre_v1\n"
    assert "slower than fp32" in cpu_bf16_warning(x86.format(""))
    assert cpu_bf16_warning(x86.format("avx512_bf16")) is None
    assert cpu_bf16_warning(x86.format("amx_bf16 amx_tile")) is None
    assert cpu_bf16_warning("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n") is None  # Arm Linux (Graviton 3)
    assert "slower" in cpu_bf16_warning("processor\t: 0\nFeatures\t: fp asimd\n")
    assert cpu_bf16_warning("") is None  # no flags to read: nothing is claimed


@pytest.mark.parametrize("bf16", [True, False])
def test_bf16_on_a_cpu_keeps_fp32_weights_and_runs_the_products_in_bf16(tmp_path, tiny_model_dir, bf16):
    seen, lines = ProductDtypes(), []
    train(_cfg(tiny_model_dir, tmp_path / "run", max_steps=4, bf16=bf16, alpha_mode="fixed"), log=lines.append, callbacks=[seen])
    # said where this CPU has no bf16 instructions, and only when bf16 was asked for
    warning = cpu_bf16_warning()
    assert (warning in lines) == (bf16 and warning is not None)
    # fp32 weights: a full fine-tuning's small updates are not rounded away to bf16's 8-bit mantissa
    assert seen.weights == {torch.float32}
    assert seen.outputs == ({torch.bfloat16} if bf16 else {torch.float32})
    saved = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "final", dtype="auto")
    assert {p.dtype for p in saved.parameters()} == {torch.float32}
    assert all(math.isfinite(m["loss"]) for m in metrics(tmp_path / "run"))


def test_bad_rows_are_counted_and_benchmark_rows_refused(tmp_path, tiny_model_dir):
    exs = read_examples(SAMPLE)[:40]
    exs[0].answer, exs[0].reasoning = None, None  # nothing to learn
    data = tmp_path / "d.jsonl"
    write_examples(exs, data)
    run = tmp_path / "run"
    cfg = TrainConfig(model=str(tiny_model_dir), data=str(data), out=str(run), max_steps=2, batch_size=2, max_length=640, report_to="none",
                      allow_benchmark_overlap=True)
    train(cfg, log=lambda *_: None)
    report = json.loads((run / "data_report.json").read_text())
    assert report["rows"] == 40 and report["no_answer_tokens"] == 1
    assert report["too_long"] > 0 and report["kept"] == 40 - 1 - report["too_long"]
    assert sum(report["too_long_by_source"].values()) == report["too_long"]
    heldout = tmp_path / "bfcl.jsonl"
    write_examples(read_examples(bfcl.question_file("simple_python"))[:3], heldout)
    # BFCL's own rows are refused even where the audit's resemblances are allowed
    with pytest.raises(SchemaError, match="held-out benchmark"):
        train(TrainConfig(model=str(tiny_model_dir), data=str(heldout), out=str(tmp_path / "h"), max_steps=1, report_to="none",
                          allow_benchmark_overlap=True), log=lambda *_: None)


def test_plot_draws_the_curves(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "loss": 3 - s / 10, "think_loss": 3.2 - s / 10, "result_loss": 2 - s / 20, "alpha": 0.5 + s / 100} for s in range(1, 11)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cli("plot", run)
    png = (run / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_accelerate_configs_validate():
    from pathlib import Path

    from accelerate.commands.config.config_args import ClusterConfig

    configs = sorted((Path(__file__).parent.parent / "configs" / "accelerate").glob("*.yaml"))
    assert {c.stem for c in configs} == {"ddp", "fsdp", "deepspeed_zero3"}
    for c in configs:
        cfg = ClusterConfig.from_yaml_file(str(c))
        assert cfg.num_processes >= 2 and cfg.mixed_precision == "bf16"


def test_yaml_config_with_gradient_accumulation_and_checkpointing(tmp_path, tiny_model_dir):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model: {tiny_model_dir}\ndata: {SAMPLE}\nallow_benchmark_overlap: true\nloss: srml\nalpha: 0.7\nmax_steps: 4\n"
                   "batch_size: 2\ngrad_accum: 2\ngradient_checkpointing: true\nlogging_steps: 2\nreport_to: none\n")
    run = tmp_path / "run"
    proc = cli("train", "--config", cfg, "--out", run, "--lr", "1e-3")  # the command line overrides the file
    assert "trained 4 steps" in proc.stdout
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["alpha"] == 0.7 and saved["grad_accum"] == 2 and saved["learning_rate"] == 1e-3
    assert [m["alpha"] for m in metrics(run)] == [0.7, 0.7]
    bad = tmp_path / "bad.yaml"
    bad.write_text("lerning_rate: 1\n")
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "train", "--config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown settings lerning_rate" in proc.stderr


def test_yaml_numbers_read_as_the_command_line_reads_them(tmp_path, tiny_model_dir):
    # YAML 1.1 reads `2e-5` as a string; it used to reach the optimizer and crash with a TypeError
    cfg = tmp_path / "train.yaml"
    cfg.write_text(f"model: {tiny_model_dir}\ndata: {SAMPLE}\nallow_benchmark_overlap: true\nlearning_rate: 2e-5\nmax_steps: '2'\n"
                   "batch_size: 2\nlogging_steps: 1\nreport_to: none\nbf16: false\n")
    run = tmp_path / "run"
    proc = cli("train", "--config", cfg, "--out", run)
    assert "trained 2 steps" in proc.stdout
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["learning_rate"] == 2e-5 and saved["max_steps"] == 2
    from typer.testing import CliRunner

    from funreason.cli import app

    # a wrong value is refused before anything loads: the model named here does not exist
    for line, expected in (("batch_size: [4]", "batch_size: expected a whole number, got [4]"),
                           ("learning_rate: fast", "learning_rate: expected a number, got 'fast'"),
                           ("learning_rate: -1e-3", "--learning-rate must be greater than 0"),
                           ("grad_accum: 0", "--grad-accum must be greater than 0"),  # M3: once a ZeroDivisionError
                           ("alpha: 2.0", "--alpha must lie in [0, 1], not 2.0"),
                           ("bf16: maybe", "bf16: expected true or false"),
                           ("learning_rate: .inf", "learning_rate: expected a finite number, got inf"),  # issue 55 M11
                           ("learning_rate: 1e400", "learning_rate: expected a finite number, got '1e400'"),
                           ("alpha: .nan", "alpha: expected a finite number, got nan")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(f"model: /no/such/model\ndata: {SAMPLE}\nout: {tmp_path / 'x'}\n{line}\n")
        result = CliRunner().invoke(app, ["train", "--config", str(bad)])  # in this process: no start-up cost
        assert result.exit_code == 2 and expected in result.stdout + result.stderr, (line, result.stdout, result.stderr)
        assert isinstance(result.exception, (SystemExit, type(None))) and not (tmp_path / "x").exists(), result.exception


def test_a_run_that_diverges_stops_with_one_line_and_writes_no_final_model(tmp_path, tiny_model_dir):
    """issue 55 M11: a learning rate so large that the weights overflow gave rc 0 and a final/ of NaNs."""
    out = tmp_path / "diverged"
    proc = funreason("train", "--model", tiny_model_dir, "--data", SAMPLE, "--out", out, "--max-steps", 4, "--allow-benchmark-overlap", "--lr", "1e30",
                     "--logging-steps", 1, "--batch-size", 2, "--save-steps", 1000, "--lora", 0, check=False)
    assert proc.returncode == 2 and "the run diverged (try a lower --lr); no final model was written" in proc.stderr, proc.stderr[-2000:]
    assert not (out / "final").exists() and "Traceback" not in proc.stderr
    refused = funreason("train", "--model", tiny_model_dir, "--data", SAMPLE, "--out", tmp_path / "x", "--lr", "inf", check=False)
    assert refused.returncode == 2 and "expected a finite number" in refused.stderr and not (tmp_path / "x").exists()


def test_a_chat_template_or_system_prompt_edited_between_run_and_resume_is_another_run(tmp_path, tiny_model_dir):
    """Probe: they were recorded by path, so --resume went on training the checkpoint on rows
    rendered another way, and final/ shipped the new template."""
    from funreason.runinfo import RunMismatch
    from funreason.train.trainer import claim_run

    template, system = tmp_path / "t.jinja", tmp_path / "system.txt"
    template.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    system.write_text("You call functions. {functions}")
    run = tmp_path / "run"
    cfg = _cfg(tiny_model_dir, run, chat_template=str(template), system_prompt=str(system))
    claim_run(cfg)
    (run / "metrics.jsonl").write_text('{"step": 2, "loss": 1.0}\n')
    claim_run(_cfg(tiny_model_dir, run, chat_template=str(template), system_prompt=str(system), resume=True))  # the same files: resumes
    for edited, key in ((system, "system_prompt_sha256"), (template, "chat_template_sha256")):
        edited.write_text(edited.read_text() + " ")
        with pytest.raises(RunMismatch, match=key):
            claim_run(_cfg(tiny_model_dir, run, chat_template=str(template), system_prompt=str(system), resume=True))


def test_an_out_folder_of_another_run_is_refused_not_resumed(tmp_path, tiny_model_dir):
    """M1: `--out` over an earlier run with other data: refused before loading, never resumed."""
    run = tmp_path / "run"
    train(_cfg(tiny_model_dir, run, max_steps=5), log=lambda *_: None)
    other = tmp_path / "other.jsonl"
    write_examples(read_examples(SAMPLE)[:10], other)
    for resume in (False, True):
        args = ["train", "--model", tiny_model_dir, "--data", other, "--out", run, "--max-steps", 4, "--allow-benchmark-overlap", *(["--resume"] if resume else [])]
        proc = subprocess.run([sys.executable, "-m", "funreason.cli", *map(str, args)], capture_output=True, text=True, timeout=600)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "holds results of another run of train (" in said and "data_sha256:" in said and "choose another --out" in said, said[-2000:]
        assert "Traceback" not in said and "Loading weights" not in said
    # the same run without --resume: told to add it, nothing overwritten
    with pytest.raises(FileExistsError, match="add --resume"):
        train(_cfg(tiny_model_dir, run, max_steps=5), log=lambda *_: None)
    # a folder of files that say nothing of their run is refused too
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    with pytest.raises(ValueError, match="do not say which model made them"):
        train(_cfg(tiny_model_dir, old, resume=True), log=lambda *_: None)


def test_a_checkpoint_cut_off_while_written_is_skipped_on_resume(tmp_path, tiny_model_dir, monkeypatch):
    """M2: a kill mid-checkpoint leaves a folder with only some files; --resume takes the one before."""
    from transformers import TrainerState

    run = tmp_path / "run"
    # SRML's α is in a checkpoint before trainer_state.json, the file that makes it count as whole
    saved, written = [], TrainerState.save_to_json

    def save_to_json(self, json_path):
        saved.append((json_path, (Path(json_path).parent / "srml_state.json").is_file()))
        return written(self, json_path)

    monkeypatch.setattr(TrainerState, "save_to_json", save_to_json)
    first = train(_cfg(tiny_model_dir, run, max_steps=10), log=lambda *_: None, callbacks=[StopAt(7)])
    monkeypatch.undo()
    assert saved and all(has_alpha for _, has_alpha in saved), saved
    assert first.steps == 7 and (run / "checkpoint-5" / "trainer_state.json").exists()
    torn = run / "checkpoint-7"
    torn.mkdir()
    (torn / "config.json").write_text((run / "checkpoint-5" / "config.json").read_text())
    # the self mode's learned α is the checkpoint's srml_state.json: without it the resume is refused, not restarted at --alpha
    state = run / "checkpoint-5" / "srml_state.json"
    kept = state.read_text()
    state.unlink()
    with pytest.raises(ValueError, match=r"checkpoint-5/srml_state.json: the learned α cannot be read .*delete .*checkpoint-5"):
        train(_cfg(tiny_model_dir, run, max_steps=10, resume=True), log=lambda *_: None)
    state.write_text(kept)
    with open(run / "metrics.jsonl", "a") as f:  # the stop cut the last log line in half
        f.write('{"step": 8, "lo')
    said = []
    done = train(_cfg(tiny_model_dir, run, max_steps=10, resume=True), log=said.append)
    assert done.steps == 10 and (run / "final").exists()
    assert any("skipping" in s and "checkpoint-7" in s and "incomplete" in s for s in said)
    assert any(s == f"resuming from {run / 'checkpoint-5'}" for s in said), said
    assert any("metrics.jsonl:" in s and "cut off when the run stopped" in s for s in said), said
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()][-1] == 10


def test_time_left_is_measured_past_the_first_logged_steps():
    # The first steps hold the longest batch (length grouping puts it first) and the warm-up. The
    # estimate after the first line must come from the steps since that line, not from the start.
    from transformers import TrainerState

    from funreason.train.trainer import ProgressLog

    now = [0.0]
    lines: list[str] = []
    progress = ProgressLog(lines.append, clock=lambda: now[0])
    state = TrainerState(global_step=0, max_steps=100)
    progress.on_train_begin(None, state, None)
    for step, t in ((10, 200.0), (20, 250.0), (30, 300.0)):  # 20 s a step, then 5
        now[0], state.global_step = t, step
        progress.on_log(None, state, None, logs={"loss": 1.0})
    assert [ln.split(" · ")[-2:] for ln in lines] == [
        ["20.0 s/step", "about 30 min left"], ["5.0 s/step", "about 7 min left"], ["5.0 s/step", "about 6 min left"]]


def test_every_checkpoint_is_saved_with_the_template_final_is_served_with(tmp_path, tiny_model_dir):
    """A checkpoint-N folder is the same kind of model folder as final: its chat template renders
    `tools` as training did, so it can be served, or averaged with final (a run's tail mean)."""
    from transformers import AutoTokenizer

    from funreason.chat import carry_tools_prompt
    from funreason.models.average import AverageConfig, average_models

    run = tmp_path / "run"
    train(_cfg(tiny_model_dir, run, max_steps=6, save_steps=3, alpha_mode="fixed"), log=lambda *_: None)
    base = AutoTokenizer.from_pretrained(tiny_model_dir).chat_template
    for folder in (run / "checkpoint-3", run / "checkpoint-6", run / "final"):
        assert AutoTokenizer.from_pretrained(folder).chat_template == carry_tools_prompt(base), folder
    done = average_models(AverageConfig(models=[str(run / "checkpoint-3"), str(run / "final")], out=str(tmp_path / "tail")))
    assert not done.reused and (tmp_path / "tail" / "config.json").exists()


def test_a_padding_free_batch_gives_the_padded_batch_loss_and_gradients(tmp_path, tiny_model_dir, tokenizer, sample_examples):
    """Rows of different lengths, padded or laid back to back with restarting position ids: the same
    SRML loss and the same gradients; without the position ids (one long row, attention across rows)
    the loss moves, so the check sees the mask."""
    from transformers import TrainingArguments

    from funreason.train.data import SegmentCollator, build_features
    from funreason.train.srml import SRMLLoss
    from funreason.train.trainer import SRMLTrainer

    rows = build_features(sample_examples[:3], tokenizer, 4096)[0]
    assert len({len(r["input_ids"]) for r in rows}) > 1, "rows of different lengths, so the padded batch pads"
    padded = SegmentCollator(tokenizer.pad_token_id)(rows)
    packed = SegmentCollator(tokenizer.pad_token_id, padding_free=True)(rows)
    assert packed["input_ids"].shape == (1, sum(len(r["input_ids"]) for r in rows)) and "attention_mask" not in packed
    assert packed["position_ids"][0, len(rows[0]["input_ids"])] == 0

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    trainer = SRMLTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[]),
                          srml=SRMLLoss("fixed", alpha=0.3))

    def loss_and_grad(batch):
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        return loss.item(), model.get_input_embeddings().weight.grad.clone()

    loss_padded, grad_padded = loss_and_grad(padded)
    loss_packed, grad_packed = loss_and_grad(packed)
    print(f"padded {loss_padded:.7f}, padding-free {loss_packed:.7f}")
    assert abs(loss_packed - loss_padded) < 1e-5
    assert torch.allclose(grad_packed, grad_padded, atol=1e-6)
    crossing = {k: v for k, v in packed.items() if k != "position_ids"}  # attention runs across the rows
    loss_crossing, grad_crossing = loss_and_grad(crossing)
    # the tiny random model attends weakly: attention across rows moves its loss by about 5e-4
    assert abs(loss_crossing - loss_padded) > 1e-4 and not torch.allclose(grad_crossing, grad_padded, atol=1e-6)
