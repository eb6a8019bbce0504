"""Training data: records → token ids with segment labels, and the padding collator.

Every assistant turn of a conversation is learned, each in a row of its own asked with the history
before it (`chat.assistant_turns`; `last_turn_only` keeps the old one-row-per-record shape), so the
think and result token means of SRML run over all turns' segments. Rows are never cut inside their
answer: a row whose result segment would not fit `max_length` is dropped and counted, as is a row
with no answer tokens, and so is a turn that cannot be learned. BFCL rows (held out) are refused.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from funreason.chat import PROMPT, RESULT, THINK, TurnTally, learned_turns, render_stream
from funreason.errors import SchemaError
from funreason.schema import Example


@dataclass
class DataReport:
    rows: int = 0  # records read
    turns: int = 0  # assistant turns to learn (one training row each)
    turns_left_out: int = 0  # assistant turns that cannot be learned (text and calls in one turn, empty, a call not on offer)
    turns_repeated: int = 0  # earlier turns identical to a record or turn seen before in the file, learned once
    left_out_examples: list[str] = field(default_factory=list)  # the first few, with the reason
    kept: int = 0
    no_answer_tokens: int = 0  # rendering has neither think nor result tokens
    too_long: int = 0  # the answer would be cut by max_length
    think_tokens: int = 0
    result_tokens: int = 0
    # the rows cut by max_length fall unevenly: a source whose rows carry many or long tools can lose
    # most of them while the total looks modest, so they are counted per `meta.source` too
    too_long_by_source: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        long = f"{self.too_long} longer than max_length"
        if self.too_long_by_source:
            by = sorted(self.too_long_by_source.items(), key=lambda kv: (-kv[1], kv[0]))
            long += " (" + ", ".join(f"{k} {n}" for k, n in by) + "; a larger max_length keeps them)"
        turns = (f"{self.turns} assistant turns from {self.rows} records"
                 + (f" ({self.turns_repeated} earlier turns repeat a record or turn seen before, learned once)" if self.turns_repeated else "")
                 + (f" ({self.turns_left_out} turns left out, e.g. {self.left_out_examples[0]})" if self.turns_left_out else "") + " · ")
        return (
            turns + f"{self.kept}/{self.turns} rows kept · {self.no_answer_tokens} without answer tokens · "
            f"{long} · {self.think_tokens} think / {self.result_tokens} result tokens"
        )


def build_features(
    examples: Iterable[Example],
    tokenizer: Any,
    max_length: int,
    *,
    system: str | None = None,
    batch_size: int = 256,
    last_turn_only: bool = False,
) -> tuple[list[dict[str, list[int]]], DataReport]:
    """Render and tokenize examples for training, one row per assistant turn (only the last with
    `last_turn_only`). Returns (features, report)."""
    report = DataReport()
    features: list[dict[str, list[int]]] = []
    too_long: Counter[str] = Counter()

    def checked(examples: Iterable[Example]) -> Iterator[Example]:
        for ex in examples:
            if ex.heldout:
                raise SchemaError(
                    f"example {ex.id} comes from {ex.meta.get('source')}, a held-out benchmark: never train on it"
                )
            yield ex

    count = TurnTally()
    for ex, r in render_stream(learned_turns(checked(examples), count, last_turn_only), tokenizer, system=system, batch_size=batch_size):
        ids, seg = r.input_ids, r.segments
        answer = [i for i, s in enumerate(seg) if s != PROMPT]
        if not answer:
            report.no_answer_tokens += 1
            continue
        end = answer[-1] + 1  # trailing template text after the answer carries no loss
        if end > max_length:
            report.too_long += 1
            too_long[str(ex.meta.get("source") or "no source")] += 1
            continue
        ids, seg = ids[: min(len(ids), max_length)], seg[: min(len(seg), max_length)]
        report.kept += 1
        report.think_tokens += sum(1 for s in seg if s == THINK)
        report.result_tokens += sum(1 for s in seg if s == RESULT)
        features.append({"input_ids": ids, "segments": seg})
    report.too_long_by_source = dict(too_long)
    report.rows, report.turns, report.turns_left_out = count.records, count.turns, count.left_out
    report.turns_repeated, report.left_out_examples = count.repeated, count.first_left_out
    return features, report


class FeatureDataset(torch.utils.data.Dataset):
    def __init__(self, features: list[dict[str, list[int]]]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.features[i]


@dataclass
class SegmentCollator:
    """Right-pads `input_ids` (pad id) and `segments` (PROMPT: no loss); adds `attention_mask`.
    With `labels=True` also emits HF-style `labels` (-100 outside the answer) for plain trainers.

    With `padding_free=True` the batch's rows are laid back to back in one row of their total length,
    with `position_ids` that restart at 0 on each row and no `attention_mask`: transformers then
    builds a block-diagonal causal mask from the position ids (flash attention reads them as
    sequence boundaries), so no token attends across rows and no compute goes to padding. Each
    row's first token is marked PROMPT, because in the packed row it is the target of the previous
    row's last token, a prediction no row teaches."""

    pad_token_id: int
    labels: bool = False
    pad_to_multiple_of: int | None = None
    padding_free: bool = False

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        if self.padding_free:
            return self._packed(rows)
        n = max(len(r["input_ids"]) for r in rows)
        if self.pad_to_multiple_of:
            n = -(-n // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(rows), n), self.pad_token_id, dtype=torch.long)
        seg = torch.full((len(rows), n), PROMPT, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, r in enumerate(rows):
            k = len(r["input_ids"])
            ids[i, :k] = torch.tensor(r["input_ids"])
            seg[i, :k] = torch.tensor(r["segments"])
            mask[i, :k] = 1
        return self._with_labels({"input_ids": ids, "attention_mask": mask, "segments": seg})

    def _packed(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        ids = torch.tensor([t for r in rows for t in r["input_ids"]]).unsqueeze(0)
        seg = torch.tensor([PROMPT if j == 0 else s for r in rows for j, s in enumerate(r["segments"])]).unsqueeze(0)
        pos = torch.tensor([j for r in rows for j in range(len(r["input_ids"]))]).unsqueeze(0)
        return self._with_labels({"input_ids": ids, "position_ids": pos, "segments": seg})

    def _with_labels(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.labels:
            seg = batch.pop("segments")
            batch["labels"] = torch.where(seg == PROMPT, torch.full_like(batch["input_ids"], -100), batch["input_ids"])
        return batch
