"""Beam search over a call list (`llm.local`): in a batch, beside greedy requests, each request gets
the answer a plain beam search finds (one request, no cache, no batch, written out here); prose and
the text before a call list stay greedy; settings it cannot honour are refused."""

from __future__ import annotations

import asyncio

import pytest
import torch
from conftest import JOKE, PARIS, TOOLS, funreason

from funreason.calls import split_think
from funreason.chat import render_prompt
from funreason.llm.guided import Guide, call_grammar, think_tokens
from funreason.llm import SamplingParams
from funreason.llm.local import LocalEngine
from funreason.schema import Example, Tool

QUESTIONS = [PARIS, JOKE, [{"role": "user", "content": "Weather in Oslo and in Rome?"}], [{"role": "user", "content": "Paris?"}]]


@torch.no_grad()
def plain_beam_search(model, tok, prompt: str, grammar: str | None, width: int, max_tokens: int, alpha: float = 0.0) -> str:
    """The search the engine runs, for one prompt: greedy until the answer opens a call list, then the
    `width` likeliest continuations (summed masked log probabilities from the opening on) of the top
    2 x width candidates, until a finished one is at least as likely as every live one. With a length
    penalty `alpha` a finished one ranks by its sum / its tokens since the opening ** alpha, and the
    search goes on while a live one's sum over the most tokens it may reach ** alpha ranks higher."""
    guide = Guide(tok, model.get_output_embeddings().weight.shape[0])
    eos = {tok.eos_token_id, *([model.generation_config.eos_token_id] if isinstance(model.generation_config.eos_token_id, int)
                               else model.generation_config.eos_token_id or [])}
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    live = [([], 0.0, guide.matcher(grammar) if grammar else None)]
    finished: list[tuple[float, list[int], bool]] = []  # (rank, tokens, ended before the budget)
    opened, at = False, 0

    def rank(score: float, n: int) -> float:  # n: tokens since the opening, the end of turn counted
        return score / max(n, 1) ** alpha if opened and alpha else score
    while True:
        w = width if opened else 1
        cands = []
        for h, (toks, score, m) in enumerate(live):
            logits = model(torch.tensor([ids + toks])).logits[:, -1].float()
            if m is not None:
                guide.mask([(m, 0)], logits)
            lp = torch.log_softmax(logits[0], -1)
            cands += [(score + float(lp[t]), h, t) for t in range(len(lp)) if lp[t] > float("-inf")]
        new = []
        for score, h, t in sorted(cands, key=lambda c: -c[0])[: 2 * w]:
            toks, _, m = live[h]
            if t in eos:
                finished.append((rank(score, len(toks) + 1 - at), toks, True))
                continue
            if m is not None:
                m = m.deep_copy()
                assert m.consume_token(t)
            if (m is not None and m.is_stopped()) or len(toks) + 1 >= max_tokens:
                finished.append((rank(score, len(toks) + 1 - at), toks + [t], m is not None and m.is_stopped()))
                continue
            new.append((toks + [t], score, m))
            if len(new) == w:
                break
        # under a penalty a list cut by the budget comes after every ended one
        order = (lambda f: (f[2] or not alpha, f[0]))
        if not new or max((f[0] for f in finished if order(f)[0]), default=float("-inf")) >= rank(new[0][1], max_tokens - at):
            return tok.decode(max(finished, key=order)[1], skip_special_tokens=True)
        if not opened and split_think(tok.decode(new[0][0], skip_special_tokens=True))[1].startswith("["):
            opened, at, new[0] = True, len(new[0][0]), (new[0][0], 0.0, new[0][2])
        live = new


def waiting_engine(model_dir, max_batch: int) -> tuple[LocalEngine, object, object]:
    """An engine on the model of `model_dir` that waits long enough for all the requests a test
    submits at once to make one batch, with its tokenizer and model."""
    loaded = LocalEngine.from_pretrained(str(model_dir), max_batch=1)
    loaded.close()
    return LocalEngine(loaded.model, loaded.tokenizer, max_batch=max_batch, batch_wait_s=1.0), loaded.tokenizer, loaded.model


def test_a_batch_of_beam_searches_finds_what_a_plain_beam_search_finds(trained_tiny_model_dir):
    engine, tok, model = waiting_engine(trained_tiny_model_dir, 8)
    tools = [Tool.from_dict(TOOLS[0])]
    prompts = [render_prompt(Example.from_dict({"id": str(i), "tools": TOOLS, "messages": m}), tok) for i, m in enumerate(QUESTIONS)]
    guided = call_grammar(tools, think_tokens=think_tokens(tok))
    forced = call_grammar(tools, prose=False, think=False)  # a call list from the first token: the search runs from there
    # guided and free, prose allowed or not, budgets that cut some searches short, and greedy rows between them
    asks = [(prompts[0], SamplingParams(max_tokens=60, grammar=guided, beams=3)),
            (prompts[1], SamplingParams(max_tokens=40, grammar=guided, beams=3)),
            (prompts[2], SamplingParams(max_tokens=30, grammar=forced, beams=4)),
            (prompts[3], SamplingParams(max_tokens=4, grammar=forced, beams=2)),
            (prompts[2], SamplingParams(max_tokens=30, grammar=forced)),
            (prompts[0], SamplingParams(max_tokens=60, beams=3)),
            (prompts[3], SamplingParams(max_tokens=25, grammar=forced, beams=3)),
            (prompts[1], SamplingParams(max_tokens=40))]
    try:
        batched = [f.result(timeout=300) for f in [engine.submit(p, sp) for p, sp in asks]]
        alone = [engine.generate([p], SamplingParams(max_tokens=sp.max_tokens, grammar=sp.grammar))[0] for p, sp in asks]
    finally:
        engine.close()
    assert engine.batches == 1 + len(asks)  # the mixed batch ran as one, then each greedy answer alone
    for (p, sp), got, greedy in zip(asks, batched, alone):
        if sp.beams == 1:
            assert got.text == greedy.text  # a greedy row is unchanged by the searches beside it
        else:
            assert got.text == plain_beam_search(model, tok, p, sp.grammar, sp.beams, sp.max_tokens), (got.text, sp)
    assert batched[0].text.endswith("[get_weather(city='Paris')]")  # after its think block the call is still there
    assert batched[1].text == alone[1].text and not batched[1].text.startswith("[")  # prose: the greedy answer
    assert all(g.text.lstrip().startswith("[") for g in batched[2:4] + batched[6:7]), [g.text for g in batched]
    assert batched[3].finish_reason == "length" and batched[3].completion_tokens == 4  # cut by its budget


def test_on_a_random_model_the_searches_find_answers_greedy_decoding_does_not(tiny_model_dir):
    engine, tok, model = waiting_engine(tiny_model_dir, 4)
    unit = Tool("set_unit", "Set the unit.", {"type": "dict", "required": ["unit"], "properties": {
        "unit": {"type": "string", "enum": ["C", "F", "K"]}, "days": {"type": "integer"}, "exact": {"type": "boolean"}}})
    grammar = call_grammar([unit], prose=False, think=False)
    prompts = ["Use Kelvin.", "Celsius, for three days", "Hello", "unit?"]
    try:
        searched = [f.result(timeout=300) for f in [engine.submit(p, SamplingParams(max_tokens=24, grammar=grammar, beams=3)) for p in prompts]]
        greedy = [g.text for g in engine.generate(prompts, SamplingParams(max_tokens=24, grammar=grammar))]
    finally:
        engine.close()
    assert [g.text for g in searched] == [plain_beam_search(model, tok, p, grammar, 3, 24) for p in prompts]
    # the searches are not greedy decoding under another name: they find other answers
    assert any(g.text != t for g, t in zip(searched, greedy)), greedy


def test_a_length_penalty_ranks_by_the_mean_and_finds_what_a_plain_search_finds(tiny_model_dir):
    engine, tok, model = waiting_engine(tiny_model_dir, 9)
    city = Tool("get_weather", "Weather of a city.", {"type": "dict", "required": ["city"], "properties": {
        "city": {"type": "string"}, "days": {"type": "integer"}}})
    grammar = call_grammar([city], prose=False, think=False)
    asks = [(p, a) for p in ("Oslo and Rome", "Use Kelvin.", "weather?") for a in (0.0, 1.0, 2.0)]
    try:
        gens = [f.result(timeout=300) for f in
                [engine.submit(p, SamplingParams(max_tokens=24, grammar=grammar, beams=3, length_penalty=a)) for p, a in asks]]
        greedy = engine.generate(["Oslo and Rome"], SamplingParams(max_tokens=24, grammar=grammar))[0]
    finally:
        engine.close()
    got = [g.text for g in gens]
    assert engine.batches == 2  # searches with and without the penalty share a batch
    # each search names the lists it finished: its answer is the best of them by its own ranking
    for g, (_, a) in zip(gens, asks):
        ended = [c for c in g.candidates if c.finish_reason == "stop" or not a]
        assert g.text == max(ended, key=lambda c: c.logprob / c.tokens ** a).text
        assert all(c.tokens >= 1 and c.logprob <= 0 for c in g.candidates)
    assert greedy.candidates is None
    assert got == [plain_beam_search(model, tok, p, grammar, 3, 24, a) for p, a in asks]
    # the penalty is not a no-op: ranked by the mean, some search ends with a longer call list
    assert any(len(b) > len(a) and b.endswith(")]") for a, b in zip(got[0::3], got[2::3])), got


def test_beam_search_is_refused_where_it_cannot_run(tmp_path, tiny_model_dir):
    from funreason.errors import BackendError
    from funreason.llm.http import HTTPBackend

    engine = LocalEngine.from_pretrained(str(tiny_model_dir), max_batch=2)
    try:
        for bad in (SamplingParams(beams=2, temperature=0.7), SamplingParams(beams=2, stop=["\n"]), SamplingParams(beams=0)):
            with pytest.raises(ValueError, match="beam"):
                engine.submit("Hello", bad)
        for bad in (SamplingParams(length_penalty=1.0), SamplingParams(beams=2, length_penalty=-1.0)):
            with pytest.raises(ValueError, match="length_penalty ranks a beam search's answers"):
                engine.submit("Hello", bad)
        with pytest.raises(ValueError, match="beam search is greedy and unstreamed"):
            engine.submit("Hello", SamplingParams(beams=2), on_text=print)
    finally:
        engine.close()

    async def ask() -> None:  # refused before anything is sent: nothing listens on port 9
        async with HTTPBackend(["http://127.0.0.1:9/v1"], "m", max_retries=0) as llm:
            await llm.complete("x", SamplingParams(beams=3))

    with pytest.raises(BackendError, match="beam search runs on a local model only"):
        asyncio.run(ask())
    proc = funreason("eval", "bfcl", "--endpoint", "http://127.0.0.1:9/v1", "--served-model", "m", "--out", tmp_path / "o",
                     "--beams", "4", check=False)
    assert proc.returncode != 0 and "--beams must be 1 or more, and more than 1 only with a local --model" in proc.stderr + proc.stdout
    proc = funreason("eval", "bfcl", "--model", tiny_model_dir, "--out", tmp_path / "o", "--length-penalty", "1", check=False)
    assert proc.returncode != 0 and "--length-penalty ranks a beam search's answers" in proc.stderr + proc.stdout


def test_an_evaluation_folder_made_with_other_beams_is_refused(tmp_path, tiny_model_dir):
    out = tmp_path / "eval"
    args = ["eval", "bfcl", "--model", tiny_model_dir, "--guided", "--categories", "simple_python", "--limit", "2",
            "--max-tokens", "8", "--batch", "2", "--out", out]
    funreason(*args, "--beams", "2")
    report = (out / "report.json").read_text()
    assert '"beams": 2' in report
    proc = funreason(*args, check=False)  # greedy into the beam search's folder: its answers are not reused
    assert proc.returncode != 0 and "beams" in proc.stderr + proc.stdout
