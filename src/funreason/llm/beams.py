"""Beam search over call lists, as pure logic on log probabilities: the engine (`local`) runs the model.

A request with `beams` > 1 is decoded greedily until its answer opens a call list (`[`, after a
think block if there is one); from there its `beams` likeliest continuations (summed log
probabilities, under its grammar when it has one) are kept, each in a row of the batch with its
own cache, and the answer is the likeliest finished one. A search ends once a finished
continuation is at least as likely as every live one (a continuation only loses probability as it
grows). Prose answers are untouched: they are the greedy ones. With a `length_penalty` α > 0 a
finished continuation of n tokens (since the opening) ranks by its summed log probability / n^α,
and the search ends once that beats the best a live one could still reach: its sum now over the
most tokens it may still grow to (a sum only falls, but a longer one is divided by more), so the
answer is still the best-ranked one the kept beams reach, at the price of searching longer; a
list cut by the token budget is then the answer only when none ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from funreason.calls import split_think
from funreason.errors import BackendError
from funreason.llm import Candidate, Generation, SamplingParams


def check_beams(params: SamplingParams, *, streamed: bool = False) -> None:
    """ValueError when `params` ask for a beam search this engine cannot run: it is greedy, with
    no stop strings and no stream (the answer is known only when the search ends)."""
    if params.beams < 1:
        raise ValueError(f"beams must be 1 or more, not {params.beams}")
    if params.beams > 1 and (params.temperature > 0 or params.stop or streamed):
        raise ValueError("beam search is greedy and unstreamed: temperature 0, no stop strings, no stream")
    if params.length_penalty < 0 or (params.length_penalty and params.beams == 1):
        raise ValueError(f"length_penalty ranks a beam search's answers: 0 or more, and only with beams > 1 (got {params.length_penalty})")


@dataclass
class Finished:
    rank: float  # what the search ranks by (the log probability, under a length penalty divided)
    tokens: list[int]
    reason: str
    logprob: float  # summed since the opening
    since: int  # tokens since the opening (once the search opened; before, all the answer's)


@dataclass
class Hypothesis:
    tokens: list[int]
    score: float  # summed log probabilities since the call list opened
    matcher: Any = None  # its grammar's state, when guided


class Beams:
    """One request's beam search: its live hypotheses, the finished ones, and whether its answer
    opened a call list yet (before that it keeps one hypothesis: greedy decoding)."""

    def __init__(self, req: Any):  # the engine's request: prompt_ids, params
        self.req = req
        self.live = [Hypothesis([], 0.0)]
        self.finished: list[Finished] = []
        self.opened = False
        self.opened_at = 0  # tokens up to and with the call list's opening: the scores count after it
        self.done = False
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True

    def step(self, logp: torch.Tensor, eos_ids: set[int], tokenizer: Any) -> list[tuple[int, int]]:
        """Extend the live hypotheses by one token from their (masked) log probabilities, one
        row each. Returns, per new live hypothesis in slot order, (the slot of its parent, its
        token); marks the search done when it ends here."""
        width = self.req.params.beams if self.opened else 1
        scores = torch.tensor([h.score for h in self.live], device=logp.device)[:, None] + logp
        top = scores.view(-1).topk(min(2 * width, scores.numel()))
        vocab = logp.shape[1]
        new: list[tuple[Hypothesis, int]] = []
        for score, flat in zip(top.values.tolist(), top.indices.tolist()):
            if score == float("-inf"):
                break
            slot, token = divmod(flat, vocab)
            parent = self.live[slot]
            if token in eos_ids:  # the end of turn is scored, so counted
                self._finish(score, parent.tokens, len(parent.tokens) + 1, "stop")
                continue
            matcher = parent.matcher
            if matcher is not None:
                matcher = matcher.deep_copy() if width > 1 else matcher
                if not matcher.consume_token(token):
                    raise BackendError(f"the grammar refused token {token}: {matcher.get_error()}")
            child = Hypothesis(parent.tokens + [token], score, matcher)
            if matcher is not None and matcher.is_stopped():
                self._finish(score, child.tokens, len(child.tokens), "stop")
            elif len(child.tokens) >= self.req.params.max_tokens:
                self._finish(score, child.tokens, len(child.tokens), "length")
            else:
                new.append((child, slot))
                if len(new) == width:
                    break
        if not new and not self.finished:
            raise BackendError("no token is allowed here (the grammar is at a dead end)")
        alpha = self.req.params.length_penalty  # under a penalty a list cut by the budget ranks after the ended ones
        best_finished = max((f.rank for f in self.finished if f.reason == "stop" or not alpha), default=float("-inf"))
        if not new or best_finished >= self._reachable(new[0][0].score):
            self.done = True
            return []
        if not self.opened and opens_calls(tokenizer.decode(new[0][0].tokens, skip_special_tokens=True)):
            self.opened = True  # the search starts here: scores count from the opening on
            self.opened_at = len(new[0][0].tokens)
            new[0][0].score = 0.0
        self.live = [h for h, _ in new]
        return [(slot, h.tokens[-1]) for h, slot in new]

    def _finish(self, score: float, tokens: list[int], length: int, reason: str) -> None:
        """Keep a finished continuation of `length` scored tokens (the end of turn counted) with its
        rank: its score, or under a length penalty its score over its tokens since the opening ** α
        (before the opening the search is greedy: the score)."""
        since = max(length - self.opened_at, 1)
        rank = penalised(score, since, self.req.params.length_penalty) if self.opened else score
        self.finished.append(Finished(rank, tokens, reason, score, since))

    def _reachable(self, score: float) -> float:
        """The best rank a live continuation scoring `score` can still finish with: its score
        (it only falls), over the most tokens it may still grow to ** α under a length penalty."""
        most = max(self.req.params.max_tokens - self.opened_at, 1)
        return penalised(score, most, self.req.params.length_penalty) if self.opened else score

    def result(self, tokenizer: Any) -> Generation | BaseException:
        if self.error is not None:
            return self.error
        if not self.finished:
            return BackendError("the beam search ended with no finished answer")
        if not self.opened:  # prose, or a list cut before it opened: the greedy answer, no search
            best = max(self.finished, key=lambda f: f.rank)
            return Generation(tokenizer.decode(best.tokens, skip_special_tokens=True), best.reason, len(self.req.prompt_ids), len(best.tokens))
        candidates = [Candidate(tokenizer.decode(f.tokens, skip_special_tokens=True), f.logprob, f.since, f.reason) for f in self.finished]
        answer = best_candidate(candidates, self.req.params.length_penalty)
        tokens = next(f.tokens for f, c in zip(self.finished, candidates) if c is answer)
        return Generation(answer.text, answer.finish_reason, len(self.req.prompt_ids), len(tokens), candidates=candidates)


def best_candidate(candidates: list[Candidate], length_penalty: float = 0.0) -> Candidate:
    """The answer a beam search ranking with `length_penalty` gives among the lists it finished:
    the highest summed log probability over tokens ** penalty, the first of equals; under a
    penalty a list cut by the token budget after every ended one, as a cut list is unreadable and
    a long run of repeated tokens can have the best mean."""
    return max(candidates, key=lambda c: (c.finish_reason == "stop" or not length_penalty,
                                          penalised(c.logprob, c.tokens, length_penalty)))


def penalised(logprob: float, tokens: int, length_penalty: float) -> float:
    """A finished list's rank: its summed log probability over its tokens ** the penalty (the sum
    itself at 0, computed as it is so that ranks at 0 are the sums exactly)."""
    return logprob / tokens ** length_penalty if length_penalty else logprob


def opens_calls(text: str) -> bool:
    """Whether an answer so far has opened a call list (after its think block, if any)."""
    return split_think(text)[1].startswith("[")
