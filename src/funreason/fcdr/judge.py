"""The judges of FCDR: the teacher's stage verdicts and self-refinement's scores of samples.

Invariant: a reply without a readable verdict is never a pass. `readable` asks again up to
`retries` times; what it still cannot read is reported as unreadable (the FCDR teacher then
raises `BackendError`, so the row is retried on the next run; a self-refinement judge counts it
as a failed judgement, kept with the reply). The decidable checks of a sample against its
reference (`check_sample`) come first and cost no judge call.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from funreason.calls import parse_output
from funreason.fit import DIFFERS, Verdict, same_calls
from funreason.llm import ChatBackend, SamplingParams
from funreason.fcdr.checks import NO_ANSWER, NO_PARSE, NO_REASONING, parse_verdict
from funreason.fcdr.prompts import stage_prompt
from funreason.schema import Call, Example

T = TypeVar("T")
_SCORE = re.compile(r"SCORE\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)", re.I)


async def readable(ask: Callable[[], Awaitable[str]], parse: Callable[[str], T | None], retries: int) -> tuple[T | None, str]:
    """(parsed, last reply): `ask` until `parse` reads the reply, at most `retries + 1` times."""
    reply = ""
    for _ in range(retries + 1):
        reply = await ask()
        parsed = parse(reply)
        if parsed is not None:
            return parsed, reply
    return None, reply


def parse_score(text: str) -> tuple[float, bool] | None:
    """(score 0–10, passed) from a judge's reply, or None when it has no readable verdict."""
    verdict = parse_verdict(text)
    if verdict is None or verdict[0] not in ("PASS", "FAIL"):
        return None
    found = _SCORE.findall(text)
    score = min(10.0, float(found[-1])) if found else (10.0 if verdict[0] == "PASS" else 0.0)
    return score, verdict[0] == "PASS"


@dataclass
class Judgement:
    """Every judge's score of one sample; `passed` when a majority passed it."""

    scores: list[float]
    passed: bool
    unreadable: list[str]  # one line per judge whose reply could not be read

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores)

    def to_dict(self) -> dict[str, Any]:
        return {"scores": self.scores, "score": self.score, "passed": self.passed, **({"unreadable": self.unreadable} if self.unreadable else {})}


class Judges:
    """One or several judges; each sample gets one verdict and score per judge."""

    def __init__(self, backends: list[ChatBackend], params: SamplingParams, retries: int = 2, concurrency: int = 32):
        self.backends, self.params, self.retries = backends, params, retries
        self.limit = asyncio.Semaphore(concurrency)
        self.calls = 0

    async def _one(self, backend: ChatBackend, text: str) -> tuple[float, bool, str | None]:
        """(score, passed, unreadable). Transport failures raise BackendError: the query is then
        not recorded and is judged again on the next run."""
        async def ask() -> str:
            async with self.limit:
                self.calls += 1
                return (await backend.chat([{"role": "user", "content": text}], self.params)).text

        parsed, reply = await readable(ask, parse_score, self.retries)
        if parsed is None:
            return 0.0, False, f"no readable SCORE/VERDICT after {self.retries + 1} replies; last: {reply[-200:]!r}"
        return parsed[0], parsed[1], None

    async def judge(self, ex: Example, functions: str, reasoning: str | None, answer: Any) -> Judgement:
        """`functions`: the row's functions as FCDR shows them (`functions_json(ex)`), built once per query."""
        text = stage_prompt("score", ex, functions, answer, reasoning=reasoning or "(none)")
        results = await asyncio.gather(*[self._one(b, text) for b in self.backends])
        passes = sum(p for _, p, _ in results)
        return Judgement([s for s, _, _ in results], passes * 2 > len(results), [e for _, _, e in results if e])


@dataclass
class SampleCheck:
    """A sample read and checked against its row's reference answer; `verdict` None when it passes."""

    reasoning: str | None
    answer: list[Call] | str | None
    verdict: Verdict | None


def check_sample(text: str, ex: Example) -> SampleCheck:
    """The decidable FCDR checks of a sample (format, function & parameter) against the reference."""
    out = parse_output(text)
    if ex.calls:
        if out.calls is None:
            return SampleCheck(out.reasoning, None, Verdict(NO_PARSE, out.error or "no calls"))
        if not same_calls(out.calls, ex.calls):
            return SampleCheck(out.reasoning, out.calls, Verdict(DIFFERS, "the calls differ from the reference"))
        if not out.reasoning:
            return SampleCheck(None, out.calls, Verdict(NO_REASONING, "the sample has no reasoning"))
        return SampleCheck(out.reasoning, out.calls, None)
    if out.calls:  # the reference is a statement
        return SampleCheck(out.reasoning, out.calls, Verdict(DIFFERS, "calls where the reference answers in words"))
    statement = (out.content or "").strip()
    if not statement:
        return SampleCheck(out.reasoning, None, Verdict(NO_ANSWER, "empty answer"))
    return SampleCheck(out.reasoning, statement, None)
