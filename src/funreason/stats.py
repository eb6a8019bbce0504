"""Token statistics of think and result segments: the paper's Table 1 for any dataset.

The paper (Table 1, xLAM refined by QwQ-32B) measured reasoning 350.74 tokens mean (248 median)
against 31.07 (27) for the function call: plain SFT spends ~92% of its signal on the reasoning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from funreason.chat import RESULT, THINK, render_many
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
        a = np.asarray(values)
        return cls(len(values), float(a.mean()), float(np.median(a)), float(np.percentile(a, 90)), int(a.max()))


@dataclass
class Stats:
    rows: int = 0
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
        """(segment, rows, mean, median, p90, max) for think and result, as tables show them."""
        return [(name, str(s.count), f"{s.mean:.2f}", f"{s.median:.0f}", f"{s.p90:.0f}", str(s.max))
                for name, s in (("think", self.think), ("result", self.result))]

    def markdown(self) -> list[str]:
        return table(("segment", "rows", "mean", "median", "p90", "max"), self.segment_rows())

    def line(self) -> str:
        return (f"rows {self.rows} · think:result ratio {self.think_result_ratio:.2f} · think share of answer tokens "
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
    batch: list[Example] = []

    def flush() -> None:
        for ex, r in zip(batch, render_many(batch, tokenizer)):
            if ex.reasoning is not None:
                think.append(r.count(THINK))
            if ex.answer is not None:
                result.append(r.count(RESULT))
        if on_batch:
            on_batch(len(batch))
        batch.clear()

    for ex in examples:
        st.rows += 1
        st.no_reasoning += ex.reasoning is None
        st.no_call += not ex.calls
        batch.append(ex)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    st.think, st.result = Summary.of(think), Summary.of(result)
    if st.result.mean:
        st.think_result_ratio = st.think.mean / st.result.mean
    total = sum(think) + sum(result)
    st.think_share = sum(think) / total if total else 0.0
    return st
