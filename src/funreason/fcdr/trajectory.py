"""FCDR over trajectories: a conversation's assistant steps, and the per-step and per-conversation counts.

A conversation is a record whose answer follows assistant turns (`prompts.is_conversation`). Its
steps are the turns training learns (`chat.assistant_turns`): each earlier assistant turn, then
the record's own answer, and also an earlier turn calling a function not on offer, which training
leaves out but FCDR judges (its query/tool stage fails it, dropping the row); the turns training
cannot learn (text and calls in one turn, an empty turn) are steps left out, named, never judged. Each step is judged with the conversation before it
in view, in order; the first step that fails ends the conversation (the later steps are not
reached).

Invariant of the counts: they are read off the outcome rows alone (`StepTally.add`), so this run's
report and the whole folder's (every run, every shard) count with the same rule. A single-turn row is
a conversation of one step, counted from the fields single-turn FCDR always wrote; a conversation's
rows carry `steps`, one record per step.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from funreason.chat import answer_turn, assistant_turns
from funreason.schema import Example

# a step's outcome in its record
PASSED, DROPPED, HARD, NOT_REACHED, LEFT_OUT = "passed", "dropped", "hard", "not_reached", "left_out"


@dataclass
class Step:
    """One assistant step: its place among the conversation's assistant turns (1-based, as
    `chat.assistant_turns` names them), the record to judge (the conversation before it, its
    reasoning, its answer) and the index of its message in the conversation (None for the
    record's own answer, which nothing follows)."""

    number: int
    example: Example
    message: int | None


@dataclass
class Steps:
    """A conversation's steps to judge, the turns left out (turn number, reason) and the count of
    all its assistant turns."""

    steps: list[Step]
    left_out: list[tuple[int, str]]
    total: int


def conversation_steps(ex: Example) -> Steps:
    """The steps of `ex`, in order. An earlier turn's record holds the messages before it, so its
    message index is their count; the record's own answer is the turn after the last message."""
    found = assistant_turns(ex)
    last = answer_turn(ex)
    steps = [Step(last, t, None) if t is ex else Step(int(t.meta["turn"]), t, len(t.messages)) for t in found.examples]
    left_out = [(x.turn, x.reason) for x in found.left_out]
    total = last if any(s.message is None for s in steps) else last - 1
    return Steps(steps, left_out, total)


def step_record(number: int, outcome: str, **info: Any) -> dict[str, Any]:
    """One step's line in a conversation's `steps`: {"step", "outcome", …} (stage, passed,
    regenerations, kind, why where they apply)."""
    return {"step": number, "outcome": outcome, **{k: v for k, v in info.items() if v is not None}}


@dataclass
class StepTally:
    """Steps judged / passed / regenerated / dropped (by stage) / hard / not reached / left out, and
    conversations kept / dropped / hard (with how many had more than one step, and at which step
    the dropped ones failed). Rejected rows and rows waiting in errors.jsonl are neither."""

    steps: Counter = field(default_factory=Counter)
    steps_dropped_by_stage: Counter = field(default_factory=Counter)
    conversations: Counter = field(default_factory=Counter)
    dropped_at_step: Counter = field(default_factory=Counter)

    def add(self, file: str, row: dict[str, Any]) -> None:
        """Count one outcome row of `file` (kept, dropped, hard; others count nothing)."""
        if file not in ("kept", "dropped", "hard"):
            return
        fcdr = (row.get("meta") or {}).get("fcdr", {}) if file == "kept" else row
        records = fcdr.get("steps")
        if records is None:  # a single-turn row: one step, its outcome the row's
            records = [step_record(1, {"kept": PASSED, "dropped": DROPPED, "hard": HARD}[file], stage=row.get("stage"),
                                   regenerations=fcdr.get("regenerations", 0))]
        self.conversations[file] += 1
        if len(records) > 1:
            self.conversations["multi_step"] += 1
        for r in records:
            outcome = r.get("outcome")
            self.steps[outcome] += 1
            if outcome in (PASSED, DROPPED, HARD):
                self.steps["judged"] += 1
            if outcome == PASSED and r.get("regenerations", 0) > 0:
                self.steps["regenerated"] += 1
            if outcome == DROPPED:
                self.steps_dropped_by_stage[r.get("stage") or "?"] += 1
                self.dropped_at_step[str(r.get("step"))] += 1

    def to_dict(self) -> dict[str, Any]:
        steps = {k: self.steps[k] for k in ("judged", PASSED, "regenerated", DROPPED, HARD, NOT_REACHED, LEFT_OUT)}
        conversations = {k: self.conversations[k] for k in ("kept", "dropped", "hard", "multi_step")}
        return {"steps": {**steps, "dropped_by_stage": dict(self.steps_dropped_by_stage)},
                "conversations": {**conversations, "dropped_at_step": dict(self.dropped_at_step)}}

    def line(self) -> str:
        """One line for the terminal."""
        tally = self.to_dict()
        s, c = tally["steps"], tally["conversations"]
        by_stage = ", ".join(f"{k} {v}" for k, v in s["dropped_by_stage"].items())
        return (f"steps: judged {s['judged']} · passed {s['passed']} ({s['regenerated']} after regeneration) · dropped {s['dropped']}"
                + (f" ({by_stage})" if by_stage else "") + f" · hard {s['hard']} · not reached {s['not_reached']} · left out {s['left_out']}"
                f" — conversations: kept {c['kept']} · dropped {c['dropped']} · hard {c['hard']} ({c['multi_step']} of more than one step)")
