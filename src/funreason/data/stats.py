"""Token statistics of think and result segments: the paper's Table 1 for any dataset.

The paper (Table 1, xLAM refined by QwQ-32B) measured reasoning 350.74 tokens mean (248 median)
against 31.07 (27) for the function call: plain SFT spends ~92% of its signal on the reasoning.

Every assistant turn of a conversation counts, as training learns it (`chat.assistant_turns`): the
summaries run over turns, and `per_turn` gives the think and result segments by the turn's place in
its conversation (1 = the first assistant turn), so a multi-turn file shows what each turn carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from funreason.chat import RESULT, THINK, TurnTally, learned_turns, render_stream
from funreason.config import cli
from funreason.markdown import table
from funreason.schema import Example


@dataclass
class Summary:
    count: int = 0
    mean: float = 0.0
    median: float = 0.0
    p90: float = 0.0
    max: int = 0

    @classmethod
    def of(cls, values: list[int]) -> "Summary":
        if not values:
            return cls()
        import numpy as np

        a = np.asarray(values)
        return cls(len(values), float(a.mean()), float(np.median(a)), float(np.percentile(a, 90)), int(a.max()))


@dataclass
class TurnCount:
    """The segments of the assistant turns at one place in their conversations."""

    turns: int = 0
    think_segments: int = 0
    result_segments: int = 0
    think_tokens: int = 0
    result_tokens: int = 0


@dataclass
class Stats:
    rows: int = 0
    turns: int = 0  # assistant turns counted (one per row for single-turn data)
    turns_left_out: int = 0  # turns training cannot learn (text and calls in one turn, empty, a call not on offer)
    turns_repeated: int = 0  # earlier turns identical to one seen before in the file, learned (and counted) once
    per_turn: dict[int, TurnCount] = field(default_factory=dict)
    rejected: int = 0
    no_reasoning: int = 0
    no_call: int = 0  # statements, or no answer at all
    think: Summary = field(default_factory=Summary)
    result: Summary = field(default_factory=Summary)
    think_result_ratio: float = 0.0  # mean think tokens / mean result tokens
    think_share: float = 0.0  # think tokens / (think + result) tokens: SFT's share on reasoning

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def segment_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(segment, segments counted, mean, median, p90, max) for think and result, as tables show them:
        one segment per assistant turn that has it, so a conversation counts each of its turns."""
        return [(name, str(s.count), f"{s.mean:.2f}", f"{s.median:.0f}", f"{s.p90:.0f}", str(s.max))
                for name, s in (("think", self.think), ("result", self.result))]

    def markdown(self) -> list[str]:
        lines = table(("segment", "segments", "mean", "median", "p90", "max"), self.segment_rows())
        if len(self.per_turn) > 1:  # a multi-turn file: what each turn carries
            lines += [""] + table(("assistant turn", "turns", "think segments", "result segments", "think tokens", "result tokens"),
                                  [(str(k), str(c.turns), str(c.think_segments), str(c.result_segments), str(c.think_tokens),
                                    str(c.result_tokens)) for k, c in sorted(self.per_turn.items())])
        return lines

    def line(self) -> str:
        besides = [f"{n} {what}" for n, what in ((self.turns_left_out, "not learnable"),
                                                   (self.turns_repeated, "more repeating one seen before, learned once")) if n]
        turns = f" · {self.turns} assistant turns" + (f" ({', '.join(besides)})" if besides else "") \
            if self.turns != self.rows or besides else ""
        return (f"rows {self.rows}{turns} · think:result ratio {self.think_result_ratio:.2f} · think share of answer tokens "
                f"{self.think_share:.1%} · no reasoning {self.no_reasoning} · no call {self.no_call} · could not be parsed {self.rejected}")


def compute_stats(
    examples: Iterable[Example],
    tokenizer: Any,
    *,
    batch_size: int = 256,
    on_batch: Callable[[int], None] | None = None,
) -> Stats:
    """Render every example with `tokenizer`'s chat template and count segment tokens."""
    think: list[int] = []
    result: list[int] = []
    st = Stats()

    counted = TurnTally()
    for ex, r in render_stream(learned_turns(examples, counted), tokenizer, batch_size=batch_size, on_batch=on_batch):
        st.turns += 1
        place = ex.meta.get("turn") or 1 + sum(m.role == "assistant" for m in ex.messages)
        count = st.per_turn.setdefault(int(place), TurnCount())
        count.turns += 1
        st.no_reasoning += ex.reasoning is None
        st.no_call += not ex.calls
        if ex.reasoning is not None:
            think.append(r.count(THINK))
            count.think_segments += 1
            count.think_tokens += think[-1]
        if ex.answer is not None:
            result.append(r.count(RESULT))
            count.result_segments += 1
            count.result_tokens += result[-1]
    st.rows, st.turns_left_out, st.turns_repeated = counted.records, counted.left_out, counted.repeated
    st.think, st.result = Summary.of(think), Summary.of(result)
    if st.result.mean:
        st.think_result_ratio = st.think.mean / st.result.mean
    total = sum(think) + sum(result)
    st.think_share = sum(think) / total if total else 0.0
    return st


@dataclass
class StatsConfig:
    """`funreason stats`'s settings."""

    data: str = field(default="", metadata=cli("Dataset file (default: the bundled sample).", argument=True))
    tokenizer: str = field(default="", metadata=cli("Tokenizer directory or hub id.", "--tokenizer", "-t", required=True))
    format: str = field(default="auto", metadata=cli("Input format: auto, native, xlam, openai, bfcl.", "--format", "-f"))
    skip_invalid: bool = field(default=False, metadata=cli("Count bad rows and go on (each written to --rejected with its reason)."))
    rejected: str | None = field(default=None, metadata=cli("Where bad rows go with --skip-invalid (default: DATA.rejected.jsonl)."))
    max_line_mb: float = field(default=1.0, metadata=cli("Reject JSONL lines longer than this."))
    chat_template: str | None = field(default=None, metadata=cli("A Jinja chat template file used in place of the model's own."))

    def validate(self) -> "StatsConfig":
        from pathlib import Path

        from funreason.data import bundled

        self.data = self.data or str(bundled("sample_xlam.jsonl"))
        path = Path(self.data)
        if not path.exists() and (path.is_absolute() or path.suffix in (".json", ".jsonl", ".parquet")):
            raise ValueError(f"{path}: no such file")
        if not self.tokenizer:
            raise ValueError("--tokenizer is required")
        from funreason.models.ref import check_model_ref

        try:  # a mistyped folder is one line at once, not a minute of hub retries
            check_model_ref(self.tokenizer)
        except FileNotFoundError as e:
            raise ValueError(str(e).replace("model folder", "tokenizer folder")) from None
        self.rejected = self.rejected or str(path.with_name(path.name + ".rejected.jsonl"))
        return self


def file_stats(cfg: StatsConfig, progress: Any = None) -> tuple[Stats, list[str]]:
    """`funreason stats`: the statistics of `cfg.data` and the first reasons rows were rejected.
    A bad row is a `SchemaError` naming it (the run stops), or with `skip_invalid` counted in
    `Stats.rejected` and written to `cfg.rejected`."""
    from funreason.chat import load_tokenizer
    from funreason.formats import Reader
    from funreason.progress import quiet

    try:
        tok = load_tokenizer(cfg.tokenizer, cfg.chat_template)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot load tokenizer {cfg.tokenizer!r}: {e}") from None
    reader = Reader(cfg.data, format=cfg.format, skip_invalid=cfg.skip_invalid, rejected=cfg.rejected if cfg.skip_invalid else None,
                    max_line_bytes=int(cfg.max_line_mb * (1 << 20)))
    with (progress or quiet)("rendering", "rows") as advance:
        st = compute_stats(reader, tok, on_batch=advance)
    st.rejected = reader.rejected_count
    return st, reader.first_errors[:5]
