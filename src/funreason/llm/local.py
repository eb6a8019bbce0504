"""A local Hugging Face transformers backend with continuous batching.

Requests from any thread queue up; one worker thread decodes up to `max_batch` of them together
with a KV cache, each row with its own temperature, top_p, seed, stop strings, grammar and token
budget. A request joins the running batch at the next decode step: it is prefilled on its own
(with whatever else arrived with it) and its cache joined to the batch's, padded on the left
(`kvcache`); a row that finishes has its answer delivered at once and frees its slot, and its
cache rows are dropped once a quarter of the batch is done or a new request needs the room. So
no request waits for another's batch to end. The tokens all prompts prefilled together begin with
(a system prompt) are run once and their cache shared. None of this changes what a row generates:
each row sees the same tokens at the same positions, its padding masked. Text deltas can be
streamed through a per-request callback. A failing decode step fails the requests in it, a failing
prefill only the requests it admits, never the worker.

With `continuous=False` the engine works as it did before: it takes up to `max_batch` queued
requests, decodes them until every row is done, and only then takes the next ones. A model whose
cache is not plain growing layers (sliding-window or recurrent layers, which left padding would
shift: `kvcache.joinable`) lets requests in only when its batch is empty, as that mode does.

A request can be cancelled (its `cancel` event set, e.g. by a server whose client went away): it
leaves its batch at the next decode step, so an abandoned request holds nobody up. `health()` says
whether the worker is alive and how long it has gone without a decode step while it has work;
`close(abort=True)` fails what is in flight at the next step instead of finishing it.

A request with `beams` > 1 is searched (`beams`: the search's logic; this module runs its rows).
Searches do not join a running batch (a search's rows multiply and move as it goes): the ones that
arrive together run as a batch of their own between two decode steps of the running batch, which
waits for them.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from funreason.errors import BackendError
from funreason.llm import Generation, SamplingParams, kvcache, next_batch
from funreason.llm.beams import Beams, check_beams


@dataclass
class _Request:
    prompt_ids: list[int]
    params: SamplingParams
    on_text: Callable[[str], None] | None
    future: Future = field(default_factory=Future)
    cancel: threading.Event | None = None

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()


SHUT_DOWN = "the engine shut down before this request finished"


class RequestCancelled(BackendError):
    """The request was cancelled (its client went away) before it finished."""


class LocalEngine:
    """Batched generation on a transformers causal LM (CPU or one GPU)."""

    def __init__(self, model: Any, tokenizer: Any, *, max_batch: int = 16, batch_wait_s: float = 0.005,
                 share_prefix: bool = True, continuous: bool = True):
        """`continuous`: requests join and leave the running batch (see the module docstring);
        False runs each batch to its end before the next starts."""
        self.model = model.eval()
        self.continuous = continuous
        self.share_prefix = share_prefix  # run the prompts' common beginning once per batch
        self.tokenizer = tokenizer
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos = eos if eos is not None else tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.batches = 0  # batches run (continuously: groups of requests admitted together), for tests and metrics
        self.cancelled = 0  # requests cancelled before they finished
        self.left_early = 0  # finished rows taken out of a running batch (for tests and metrics)
        self.joined = 0  # requests that joined a batch already decoding (for tests and metrics)
        self._busy_since: float | None = None  # when the running batch (or its last decode step) started
        self._stopping = False
        self._guide_obj: Any = None
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker = threading.Thread(target=self._run_continuous if continuous else self._run,
                                        name="funreason-generate", daemon=True)
        self._worker.start()

    @classmethod
    def from_pretrained(cls, name: str, *, max_batch: int = 16, device: str | None = None, dtype: str = "auto",
                        chat_template: str | None = None, continuous: bool = True) -> "LocalEngine":
        """`chat_template`: a Jinja file used in place of the model's own (`chat.load_tokenizer`)."""
        from transformers import AutoModelForCausalLM

        from funreason.chat import load_tokenizer
        from funreason.models.ref import check_model_ref

        check_model_ref(name)
        tokenizer = load_tokenizer(name, chat_template)
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device), tokenizer, max_batch=max_batch, continuous=continuous)

    # --- public API -----------------------------------------------------------------------------

    def submit(self, prompt: str | list[int], params: SamplingParams, on_text: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None) -> Future:
        """Queue one prompt (text, rendered already, or token ids). The future gives a Generation,
        or raises RequestCancelled once `cancel` is set."""
        check_beams(params, streamed=on_text is not None)
        ids = prompt if isinstance(prompt, list) else self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        req = _Request(list(ids), params, on_text, cancel=cancel)
        self._queue.put(req)
        return req.future

    def health(self) -> dict[str, Any]:
        """`alive`: the worker runs; `stalled_s`: seconds since the last decode step while busy (0 when idle)."""
        since = self._busy_since
        return {"alive": self._worker.is_alive(), "busy": since is not None,
                "stalled_s": round(time.monotonic() - since, 1) if since is not None else 0.0, "queued": self._queue.qsize()}

    def generate(self, prompts: list[str], params: SamplingParams) -> list[Generation]:
        """Generate for many prompts (batched by the worker); blocks until all are done."""
        return [f.result() for f in [self.submit(p, params) for p in prompts]]

    def abort(self) -> None:
        """Fail every request queued or decoding, at the next decode step; the worker keeps running."""
        self._stopping = True

    def close(self, abort: bool = False) -> None:
        """Stop the worker once the queue is done; with `abort`, fail what is queued or decoding now."""
        if abort:
            self.abort()
        self._queue.put(None)
        self._worker.join(timeout=10)
        while True:  # what was queued behind the close mark never runs: say so to its waiters
            try:
                r = self._queue.get_nowait()
            except queue.Empty:
                break
            if r is not None and r.future.set_running_or_notify_cancel():
                r.future.set_exception(BackendError(SHUT_DOWN))

    # --- worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = next_batch(self._queue, self.max_batch, self.batch_wait_s)
            if batch is None:
                return
            batch = self._starting(batch)
            if not batch:
                continue
            self._busy_since = time.monotonic()
            try:
                results = self._generate_batch(batch)
            except Exception as e:  # a failed batch fails its requests, not the server
                for r in batch:
                    if not r.future.done():
                        r.future.set_exception(BackendError(f"generation failed: {type(e).__name__}: {e}"))
                continue
            finally:
                self._busy_since = None
            self.batches += 1
            for r, g in zip(batch, results):
                _settle(r, g)

    def _run_continuous(self) -> None:
        """The worker of continuous batching: admit what is queued (blocking only while nothing
        runs), then one decode step of the running batch, until closed and done."""
        run: _Running | None = None
        closing = False  # the close mark was taken: admit nothing more, finish what runs
        while True:
            if run is None:
                self._busy_since = None
                if closing:
                    return
                batch = next_batch(self._queue, self.max_batch, self.batch_wait_s)
                if batch is None:
                    return
            else:
                batch, closing = self._waiting(run, closing)
            batch = self._starting(batch)
            if batch:
                self.batches += 1
                self._busy_since = time.monotonic()
                run = self._admit(run, batch)
            if run is not None:
                run = self._step(run)

    def _waiting(self, run: "_Running", closing: bool) -> tuple[list[_Request], bool]:
        """The queued requests that fit in the running batch now (none while it cannot take rows),
        without waiting for more, and whether the close mark was among them."""
        free = self.max_batch - run.live() if run.joinable else 0
        taken: list[_Request] = []
        while not closing and len(taken) < free:
            try:
                r = self._queue.get_nowait()
            except queue.Empty:
                break
            if r is None:
                closing = True
            else:
                taken.append(r)
        return taken, closing

    def _starting(self, batch: list[_Request]) -> list[_Request]:
        """The requests of `batch` that start now: one cancelled before it started (by its future or
        its event), or taken while the engine stops, never enters a batch and is failed here."""
        started = []
        for r in batch:
            if not r.future.set_running_or_notify_cancel():
                continue
            gone = self._leaving(r)
            if gone is None:
                started.append(r)
            else:
                r.future.set_exception(gone)
        return started

    @torch.no_grad()
    def _admit(self, run: "_Running | None", batch: list[_Request]) -> "_Running | None":
        """`run` with the requests of `batch` decoding in it: beam searches are run to their end
        first, as a batch of their own; the others are prefilled together and joined to `run`.
        A failure fails only the requests of `batch` it concerns."""
        searches = [r for r in batch if r.params.beams > 1]
        if searches:
            try:
                results = self._beam_batch(searches)
            except Exception as e:
                results = [e] * len(searches)
            for r, g in zip(searches, results):
                _settle(r, g)
        plain = [r for r in batch if r.params.beams == 1]
        if not plain:
            return run
        try:
            slots = self._open_slots(plain)
            cache, logits, mask, pos = self._prefill(plain)
        except Exception as e:  # a prefill that fails fails the requests it admits; the running rows go on
            for r in plain:
                _settle(r, e)
            return run
        new = _Running(slots, cache, logits, mask, pos[:, -1:], kvcache.joinable(cache))
        if run is None:
            return new
        self._shed(run, everyone=True)
        if not run.slots:
            return new
        self.joined += len(plain)
        return run.join(new)

    @torch.no_grad()
    def _step(self, run: "_Running") -> "_Running | None":
        """One decode step of the running batch: each live row takes its next token, the rows that
        finish are answered now, and the batch runs the tokens. None once no row is left; a step
        that fails fails every row still in it."""
        self._busy_since = time.monotonic()
        try:
            for s in run.slots:  # cancelled (or shutting down): the row leaves the batch now
                gone = None if s.row.done else self._leaving(s.row.req)
                if gone is not None:
                    s.row.fail(gone)
            nxt = self._next_tokens(run.slots, run.logits)
            for s in run.slots:
                if s.row.done and not s.row.req.future.done():
                    _settle(s.row.req, s.row.error or s.row.result())
            if run.live() == 0:
                return None
            kept = self._shed(run)
            if kept is not None:
                nxt = nxt[kept]
            run.cache, run.logits, run.mask, run.pos = self._decode(run.cache, nxt, run.mask, run.pos)
            return run
        except Exception as e:  # a failed step fails the rows in it, not the server
            for s in run.slots:
                if not s.row.req.future.done():
                    _settle(s.row.req, e)
            return None

    def _shed(self, run: "_Running", everyone: bool = False) -> torch.Tensor | None:
        """Take the finished rows out of the running batch's tensors: all of them with `everyone`
        (room is needed), else once they are a quarter of it (a decode step costs by rows, and
        selecting the cache copies it, so it is not done for every single row). Returns the
        indices of the rows kept, or None when none left."""
        keep = [j for j, s in enumerate(run.slots) if not s.row.done]
        gone = len(run.slots) - len(keep)
        if not gone or not (everyone or gone >= max(1, len(run.slots) // 4)):
            return None
        self.left_early += gone
        return run.select(keep, self.device)

    def _leaving(self, r: _Request) -> BackendError | None:
        """The error a request must leave with now (the engine is stopping, or it was cancelled,
        which is counted), or None while it may go on."""
        if self._stopping:
            return BackendError(SHUT_DOWN)
        if r.cancelled():
            self.cancelled += 1
            return RequestCancelled("cancelled: the client went away")
        return None

    @torch.no_grad()
    def _generate_batch(self, batch: list[_Request]) -> list[Generation | BaseException]:
        beam = [r.params.beams > 1 for r in batch]
        if any(beam):  # beam searches decode apart from the rest of a mixed batch
            out: dict[int, Generation | BaseException] = {}
            for part in ([i for i in range(len(batch)) if beam[i]], [i for i in range(len(batch)) if not beam[i]]):
                if part:
                    run = self._beam_batch if beam[part[0]] else self._greedy_batch
                    out.update(zip(part, run([batch[i] for i in part])))
            return [out[i] for i in range(len(batch))]
        return self._greedy_batch(batch)

    def _greedy_batch(self, batch: list[_Request]) -> list[Generation | BaseException]:
        """Decode `batch` until every row is done (the engine with `continuous=False`)."""
        slots = self._open_slots(batch)
        cache, logits, mask, pos = self._prefill(batch)
        steps = max(r.params.max_tokens for r in batch)
        live = list(range(len(slots)))  # live[j]: the slot that the batch tensors' j-th row decodes
        for _ in range(steps):
            self._busy_since = time.monotonic()
            for s in slots:  # cancelled (or shutting down): the row leaves the batch now
                gone = None if s.row.done else self._leaving(s.row.req)
                if gone is not None:
                    s.row.fail(gone)
            if all(s.row.done for s in slots):
                break
            nxt = self._next_tokens([slots[i] for i in live], logits)
            if all(s.row.done for s in slots):
                break
            keep = [j for j, i in enumerate(live) if not slots[i].row.done]
            # finished rows leave the batch once a quarter of it is done: a decode step costs by
            # rows, and selecting the cache copies it, so it is not done for every single row
            if len(live) - len(keep) >= max(1, len(live) // 4):
                idx = torch.tensor(keep, dtype=torch.long, device=self.device)
                cache.batch_select_indices(idx)
                self.left_early += len(live) - len(keep)
                mask, pos, nxt, live = mask[idx], pos[idx], nxt[idx], [live[j] for j in keep]
            cache, logits, mask, pos = self._decode(cache, nxt, mask, pos)
        return [s.row.error or s.row.result() for s in slots]

    def _open_slots(self, batch: list[_Request]) -> list["_Slot"]:
        """A decoding slot per request: its row, its sampler's generator and its grammar's matcher.
        A row's own settings (a seed, a grammar that does not compile) can fail it, and only it."""
        slots = []
        for r in batch:
            row, gen, matcher = _Row(r, self.tokenizer), None, None
            try:
                gen = _row_generator(r.params.seed, self.device)
                if r.params.grammar is not None:
                    matcher = self._guide().matcher(r.params.grammar)
            except Exception as e:
                row.fail(e)
            slots.append(_Slot(row, gen, matcher))
        return slots

    def _next_tokens(self, slots: list["_Slot"], logits: torch.Tensor) -> torch.Tensor:
        """Each live slot's next token from its row of `logits` (masked by its grammar), added to
        its row; the pad token for rows that are done. Sampling and the client's stream callback
        are per row: a failure ends that row only."""
        guided = [(s.matcher, j) for j, s in enumerate(slots) if s.matcher is not None and not s.row.done]
        if guided:  # the tokens each guided row's grammar does not allow now are masked
            self._guide().mask(guided, logits)
        # greedy rows take one batched argmax; sampling rows draw from their own generator
        greedy = [s.row.req.params.temperature <= 0 for s in slots]
        best = logits.argmax(-1).tolist() if any(greedy) else None
        tokens = [self.pad_id] * len(slots)
        for j, s in enumerate(slots):
            if s.row.done:
                continue
            try:
                tok = best[j] if greedy[j] else _choose(logits[j], s.row.req.params, s.gen)
                tokens[j] = tok
                s.row.add(tok, tok in self.eos_ids)
                if s.matcher is not None and tok not in self.eos_ids:
                    _follow(s.matcher, tok, s.row)
            except Exception as e:
                s.row.fail(e)
        return torch.tensor(tokens, dtype=torch.long, device=self.device)

    def _beam_batch(self, batch: list[_Request]) -> list[Generation | BaseException]:
        """Beam search for every request of `batch` (see the module docstring). Each request holds
        one row of the batch tensors per live hypothesis (one while it is greedy), its rows
        together; finished requests leave at once."""
        groups = [Beams(r) for r in batch]
        for g in groups:  # a grammar that does not compile fails its own request
            if g.req.params.grammar is not None:
                try:
                    g.live[0].matcher = self._guide().matcher(g.req.params.grammar)
                except Exception as e:
                    g.fail(e)
        cache, logits, mask, pos = self._prefill(batch)
        base = {i: i for i in range(len(groups))}  # each request's first row in the batch tensors
        for _ in range(max(r.params.max_tokens for r in batch)):
            self._busy_since = time.monotonic()
            for g in groups:
                gone = None if g.done else self._leaving(g.req)
                if gone is not None:
                    g.fail(gone)
            guided = [(h.matcher, base[i] + k) for i in base if not groups[i].done
                      for k, h in enumerate(groups[i].live) if h.matcher is not None]
            if guided:
                self._guide().mask(guided, logits)
            logp = torch.log_softmax(logits.float(), dim=-1)
            rows: list[int] = []  # the row each next hypothesis continues
            tokens: list[int] = []
            moved: dict[int, int] = {}
            for i, first in base.items():
                g = groups[i]
                if g.done:
                    continue
                try:
                    moves = g.step(logp[first : first + len(g.live)], self.eos_ids, self.tokenizer)
                except Exception as e:  # a grammar fault ends this request only
                    g.fail(e)
                    continue
                if moves:
                    moved[i] = len(rows)
                    rows += [first + parent for parent, _ in moves]
                    tokens += [token for _, token in moves]
            if not rows:
                break
            base = moved
            if rows != list(range(logits.shape[0])):  # hypotheses moved, multiplied or left: their caches follow
                idx = torch.tensor(rows, dtype=torch.long, device=self.device)
                cache.batch_select_indices(idx)
                mask, pos = mask[idx], pos[idx]
            nxt = torch.tensor(tokens, dtype=torch.long, device=self.device)
            cache, logits, mask, pos = self._decode(cache, nxt, mask, pos)
        return [g.result(self.tokenizer) for g in groups]

    def _decode(self, cache: Any, tokens: torch.Tensor, mask: torch.Tensor,
                pos: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decode step: each row's next token (`tokens`, one per row) run on its cache, its
        attention mask grown by that token and its position one on. Returns the cache, the next
        logits, the mask and the positions."""
        mask = torch.cat([mask, torch.ones((len(tokens), 1), dtype=mask.dtype, device=self.device)], dim=1)
        pos = pos[:, -1:] + 1
        out = self.model(input_ids=tokens[:, None], attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        return out.cache, out.logits[:, -1, :], mask, pos

    def _guide(self) -> Any:
        """The grammar matchers' tokenizer, built on the first guided request (`guided.Guide`)."""
        if self._guide_obj is None:
            from funreason.llm.guided import Guide

            self._guide_obj = Guide(self.tokenizer, self.model.get_output_embeddings().weight.shape[0])
        return self._guide_obj

    def _prefill(self, batch: list[_Request]) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The prompts' KV cache and last-position logits, with the attention mask and positions
        the decode steps continue from. The tokens every prompt begins with (BFCL's system prompt,
        about half of each prompt there) are run once and their cache repeated for every row; the
        rest is left-padded after them, the padding masked and skipped by the positions."""
        n = len(batch)
        shared = shared_prefix([r.prompt_ids for r in batch]) if self.share_prefix and n > 1 else 0
        if shared < MIN_SHARED_PREFIX:
            shared = 0
        cache = None
        if shared:
            head = torch.tensor([batch[0].prompt_ids[:shared]], dtype=torch.long, device=self.device)
            cache = self.model(input_ids=head, use_cache=True, logits_to_keep=1).cache
            cache.batch_repeat_interleave(n)
        width = max(len(r.prompt_ids) for r in batch) - shared
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, r in enumerate(batch):
            own = r.prompt_ids[shared:]
            ids[i, width - len(own) :] = torch.tensor(own)
            mask[i, width - len(own) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        pos = shared + (mask.cumsum(-1) - 1).clamp_min(0)
        mask = torch.cat([torch.ones((n, shared), dtype=mask.dtype, device=self.device), mask], dim=1)
        # logits of the last position only: the head over every prompt position costs as much as a layer
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True, logits_to_keep=1)
        return out.cache, out.logits[:, -1, :], mask, pos


MIN_SHARED_PREFIX = 32  # tokens: below this, the extra forward call costs more than it saves


def shared_prefix(prompts: list[list[int]]) -> int:
    """How many leading tokens all `prompts` have in common, leaving each at least one of its own
    (the last prompt token's logits start the decoding)."""
    return min(len(os.path.commonprefix(prompts)), min(len(p) for p in prompts) - 1)


def _settle(r: _Request, g: Generation | BaseException) -> None:
    """Answer `r`'s future with its generation, or with its error: as it is when the engine's own
    (cancelled, shut down), else as a `generation failed` error of this request alone."""
    if isinstance(g, BackendError):
        r.future.set_exception(g)
    elif isinstance(g, BaseException):
        r.future.set_exception(BackendError(f"generation failed: {type(g).__name__}: {g}"))
    else:
        r.future.set_result(g)


def _row_generator(seed: int | None, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(seed)
    return g


def _follow(matcher: Any, token: int, row: "_Row") -> None:
    """Advance a guided row's matcher by the token it took; the row ends where its grammar does."""
    if not matcher.consume_token(token):
        raise BackendError(f"the grammar refused token {token}: {matcher.get_error()}")
    if matcher.is_stopped() and not row.done:
        row.stop()


def _choose(logits: torch.Tensor, p: SamplingParams, gen: torch.Generator) -> int:
    if p.temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / p.temperature, dim=-1)
    if p.top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        keep = sorted_p.cumsum(-1) - sorted_p < p.top_p  # the smallest set reaching top_p
        sorted_p = sorted_p * keep
        return int(order[torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=gen)])
    return int(torch.multinomial(probs, 1, generator=gen))


@dataclass
class _Slot:
    """One row of a decoding batch: its request's state, its sampler's generator, its grammar's matcher."""

    row: "_Row"
    gen: torch.Generator | None
    matcher: Any


@dataclass
class _Running:
    """The running batch of continuous batching: its slots and the tensors that decode them, row j
    of each tensor being slot j (`kvcache` for how rows of different lengths line up). `pos` holds
    each row's last position; `joinable`: its cache can take new rows."""

    slots: list[_Slot]
    cache: Any
    logits: torch.Tensor
    mask: torch.Tensor
    pos: torch.Tensor
    joinable: bool

    def live(self) -> int:
        return sum(not s.row.done for s in self.slots)

    def select(self, keep: list[int], device: torch.device) -> torch.Tensor:
        """Keep only the rows `keep` (slot indices, in order), and cut the columns no row attends
        to. Returns `keep` as an index tensor, for the caller's own per-row tensors."""
        idx = torch.tensor(keep, dtype=torch.long, device=device)
        self.cache.batch_select_indices(idx)
        self.slots = [self.slots[j] for j in keep]
        self.logits, self.mask, self.pos = self.logits[idx], self.mask[idx], self.pos[idx]
        if self.joinable:
            self.cache, self.mask = kvcache.trim(self.cache, self.mask)
        return idx

    def join(self, other: "_Running") -> "_Running":
        """This batch with the rows of `other` after its own (both `joinable`)."""
        self.cache, self.mask = kvcache.join(self.cache, self.mask, other.cache, other.mask)
        self.slots += other.slots
        self.logits = torch.cat([self.logits, other.logits])
        self.pos = torch.cat([self.pos, other.pos])
        return self


class _Row:
    """One request's decoding state: tokens, text so far, stop strings, budget, streaming."""

    def __init__(self, req: _Request, tokenizer: Any):
        self.req = req
        self.tokenizer = tokenizer
        self.tokens: list[int] = []
        self.text = ""  # text accepted so far (stop strings removed)
        self.sent = 0  # characters already streamed
        self.done = False
        self.finish_reason = "length"
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True

    def add(self, token: int, is_eos: bool) -> None:
        if is_eos:
            self._finish("stop")
            return
        self.tokens.append(token)
        if self.req.params.stop or self.req.on_text is not None:  # text is needed as it grows
            self._update_text()
            if self.done:
                return
        if len(self.tokens) >= self.req.params.max_tokens:
            self._finish("length")
            return
        self._stream(hold=max((len(s) for s in self.req.params.stop), default=1) - 1)

    def stop(self) -> None:
        """End the answer here, as an end-of-turn token would (its grammar allows nothing more)."""
        self._finish("stop")

    def _update_text(self) -> None:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        stop_at = min((i for s in self.req.params.stop if s and (i := text.find(s)) >= 0), default=-1)
        if stop_at >= 0:
            self.text = text[:stop_at]
            self._finish("stop")
            return
        self.text = text

    def _stream(self, hold: int = 0) -> None:
        """Send new text, holding back an incomplete character and what could begin a stop string."""
        if self.req.on_text is None:
            return
        end = len(self.text) - hold
        if self.text.endswith("\ufffd"):
            end = min(end, len(self.text) - 1)
        if end > self.sent:
            self.req.on_text(self.text[self.sent : end])
            self.sent = end

    def _finish(self, reason: str) -> None:
        if not self.done and not (self.req.params.stop or self.req.on_text is not None):
            self.text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)  # decoded once, at the end
        self.done = True
        self.finish_reason = reason
        self._stream()

    def result(self) -> Generation:
        return Generation(self.text, self.finish_reason, len(self.req.prompt_ids), len(self.tokens))


class LocalChat:
    """The chat protocol (`llm.ChatBackend`) over a LocalEngine, which it owns and closes."""

    def __init__(self, engine: LocalEngine):
        self.engine = engine

    async def aclose(self) -> None:
        self.engine.close()

    async def chat(self, messages: list[dict[str, Any]], params: SamplingParams, tools: list[dict] | None = None) -> Generation:
        import asyncio

        if tools:  # the model's template would render them, but nothing here parses native calls back
            raise ValueError("a local chat backend takes no tools; put them in the prompt")
        prompt = self.engine.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return await asyncio.wrap_future(self.engine.submit(prompt, params))
