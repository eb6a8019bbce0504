"""Continuous batching in the local engine (`llm.local`, `llm.kvcache`): a request joins the running
batch at the next decode step and leaves it, answered, as soon as it finishes, so a short request
behind a long one is not held up by it, and gets the answer it gets alone; a request that leaves
frees its slot; a cancelled one leaves mid-batch and its batch-mates keep their answers. With
`continuous=False`, or on a model whose cache cannot be padded (sliding-window layers), each batch
runs to its end first, as before.

The long requests run on the tiny random model, which rarely ends early (its greedy answers run to
their budget): the test cancels them when it is done with them."""

from __future__ import annotations

import threading

import pytest
import torch
from conftest import TOOLS

from funreason.chat import render_prompt
from funreason.llm import SamplingParams
from funreason.llm.guided import call_grammar
from funreason.llm.kvcache import join, joinable, trim
from funreason.llm.local import LocalEngine, RequestCancelled
from funreason.schema import Example, Tool

LONG = 4000  # tokens: the tiny model decodes them for many seconds, far longer than any short request
WEATHER = Tool.from_dict(TOOLS[0])


def engine_on(model_dir, max_batch: int, continuous: bool = True) -> LocalEngine:
    loaded = LocalEngine.from_pretrained(str(model_dir), max_batch=1)
    loaded.close()
    return LocalEngine(loaded.model, loaded.tokenizer, max_batch=max_batch, continuous=continuous)


def start_long(engine: LocalEngine, prompt: str = "hello", max_tokens: int = LONG) -> tuple[object, threading.Event]:
    """A long greedy request, once it is decoding (its first text streamed); with its cancel event."""
    started, cancel = threading.Event(), threading.Event()
    future = engine.submit(prompt, SamplingParams(max_tokens=max_tokens), on_text=lambda _: started.set(), cancel=cancel)
    assert started.wait(60), "the long request never started"
    return future, cancel


def answer(g) -> tuple:
    return g.text, g.finish_reason, g.completion_tokens, [c.text for c in g.candidates or []]


def test_a_cache_takes_rows_of_other_lengths_padded_on_the_left_and_sheds_columns_no_row_uses():
    from transformers.cache_utils import DynamicCache

    def cache(rows: int, tokens: int, fill: float) -> DynamicCache:
        c = DynamicCache()
        for i in range(2):
            c.update(torch.full((rows, 2, tokens, 4), fill + i), torch.full((rows, 2, tokens, 4), -fill - i), i)
        return c

    a, b = cache(2, 3, 1.0), cache(1, 5, 7.0)
    assert joinable(a) and joinable(b) and not joinable(DynamicCache())  # no layer filled yet: nothing to pad
    k = torch.zeros(1, 2, 3, 4)
    assert not joinable(DynamicCache(ddp_cache_data=[(k, k, torch.tensor(4))]))  # a sliding window: padding would shift it
    joined, mask = join(a, torch.ones(2, 3, dtype=torch.long), b, torch.tensor([[0, 1, 1, 1, 1]]))
    assert joined.layers[1].keys.shape == (3, 2, 5, 4) and mask.tolist() == [[0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [0, 1, 1, 1, 1]]
    assert joined.layers[1].keys[0, :, :2].abs().sum() == 0 and bool((joined.layers[1].keys[0, :, 2:] == 2.0).all())
    assert bool((joined.layers[0].values[2, :, 1:] == -7.0).all())  # the longer row kept its own states, unpadded
    joined.batch_select_indices(torch.tensor([0, 1]))  # the longer row leaves: two columns no row attends to
    trimmed, mask = trim(joined, mask[:2])
    assert mask.tolist() == [[1, 1, 1]] * 2 and trimmed.layers[0].keys.shape == (2, 2, 3, 4)
    assert bool((trimmed.layers[0].keys == 1.0).all())
    assert trim(trimmed, mask)[1] is mask  # nothing to cut: unchanged


def test_a_short_request_behind_a_long_one_finishes_first_with_the_answer_it_gets_alone(tiny_model_dir):
    engine = engine_on(tiny_model_dir, 8)
    prompt = render_prompt(Example.from_dict({"id": "p", "tools": TOOLS, "messages": [{"role": "user", "content": "Weather in Oslo?"}]}),
                           engine.tokenizer)
    grammar = call_grammar([WEATHER], prose=False, think=False)
    # greedy, sampled with a seed, guided by a grammar, and a beam search (which runs apart, between two steps)
    asks = [(prompt, SamplingParams(max_tokens=12)), ("Tell me a joke.", SamplingParams(max_tokens=20, temperature=1.0, seed=3)),
            (prompt, SamplingParams(max_tokens=24, grammar=grammar)), ("Use Kelvin.", SamplingParams(max_tokens=16, grammar=grammar, beams=3))]
    try:
        long, cancel = start_long(engine)
        try:
            joined = [f.result(timeout=120) for f in [engine.submit(p, sp) for p, sp in asks]]
            assert not long.done(), "the short requests waited for the long one"
        finally:
            cancel.set()
        with pytest.raises(RequestCancelled):
            long.result(timeout=60)
        alone = [engine.generate([p], sp)[0] for p, sp in asks]
    finally:
        engine.close()
    assert engine.joined >= 3  # the plain ones joined the long one's batch
    assert [answer(g) for g in joined] == [answer(g) for g in alone]
    assert joined[1].completion_tokens == 20 and joined[2].text.lstrip().startswith("[get_weather(")


def test_a_request_that_leaves_frees_its_slot_for_the_next(tiny_model_dir):
    engine = engine_on(tiny_model_dir, 2)  # the long request and one more
    try:
        long, cancel = start_long(engine)
        try:
            for q in ("Weather in Paris?", "Tell me a joke.", "Hello"):  # each takes the slot the one before left
                assert engine.submit(q, SamplingParams(max_tokens=10)).result(timeout=120).completion_tokens == 10
            assert not long.done()
        finally:
            cancel.set()
        with pytest.raises(RequestCancelled):
            long.result(timeout=60)
    finally:
        engine.close()
    assert engine.joined == 3 and engine.left_early == 3


def test_a_request_cancelled_mid_batch_leaves_it_and_its_batch_mates_keep_their_answers(tiny_model_dir):
    engine = engine_on(tiny_model_dir, 4)
    try:
        sampled = SamplingParams(max_tokens=150, temperature=1.0, seed=5)
        alone = engine.generate(["Weather in Paris?"], sampled)[0]
        long, cancel = start_long(engine)
        decoding = threading.Event()
        mate = engine.submit("Weather in Paris?", sampled, on_text=lambda _: decoding.set())
        assert decoding.wait(60)
        before = engine.cancelled
        cancel.set()  # the long request's client goes away while its batch-mate decodes
        with pytest.raises(RequestCancelled):
            long.result(timeout=60)
        assert engine.joined == 1 and not mate.done()
        assert answer(mate.result(timeout=120)) == answer(alone)
        assert engine.cancelled == before + 1
        # the engine is free: a request after them runs
        assert engine.submit("Hello", SamplingParams(max_tokens=4)).result(timeout=60).completion_tokens == 4
    finally:
        engine.close()


def test_requests_that_join_one_by_one_get_what_each_gets_alone_on_a_trained_model(trained_tiny_model_dir):
    engine = engine_on(trained_tiny_model_dir, 8)
    questions = ["Weather in Paris?", "Tell me a joke.", "Weather in Oslo and in Rome?", "What is 2 + 2?", "Paris?"]
    prompts = [render_prompt(Example.from_dict({"id": str(i), "tools": TOOLS, "messages": [{"role": "user", "content": q}]}), engine.tokenizer)
               for i, q in enumerate(questions)]
    try:
        alone = [engine.generate([p], SamplingParams(max_tokens=60))[0] for p in prompts]
        long, cancel = start_long(engine, "hello", 4000)  # keeps a batch running while the others join it
        futures = []
        try:
            for p in prompts:  # each submitted once the one before is decoding
                started = threading.Event()
                futures.append(engine.submit(p, SamplingParams(max_tokens=60), on_text=lambda _, e=started: e.set()))
                started.wait(60)
            joined = [f.result(timeout=120) for f in futures]
        finally:
            cancel.set()
    finally:
        engine.close()
    assert engine.joined >= len(prompts) - 1
    assert [answer(g) for g in joined] == [answer(g) for g in alone]
    assert joined[0].text.endswith("[get_weather(city='Paris')]")  # the trained answer, unchanged by its batch-mates


def test_without_continuous_batching_a_batch_runs_to_its_end_before_the_next_starts(tiny_model_dir):
    engine = engine_on(tiny_model_dir, 8, continuous=False)
    try:
        long, _ = start_long(engine, max_tokens=300)
        short = engine.submit("Hello", SamplingParams(max_tokens=2))
        short.result(timeout=120)
        assert long.done() and long.result().completion_tokens == 300  # the short one waited for the whole batch
    finally:
        engine.close()
    assert engine.batches == 2 and engine.joined == 0


def test_a_model_with_sliding_window_layers_takes_new_requests_only_when_its_batch_is_empty(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    # the tiny model with its first layer under a sliding window: left padding would shift that layer's cache
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), use_sliding_window=True, sliding_window=8,
                                                 max_window_layers=0, layer_types=["sliding_attention", "full_attention"])
    loaded = LocalEngine.from_pretrained(str(tiny_model_dir), max_batch=1)
    loaded.close()
    engine = LocalEngine(model, loaded.tokenizer, max_batch=8)
    try:
        alone = engine.generate(["Tell me a joke."], SamplingParams(max_tokens=12))[0]
        long, _ = start_long(engine, max_tokens=200)
        short = engine.submit("Tell me a joke.", SamplingParams(max_tokens=12)).result(timeout=120)
        assert long.done() and long.result().completion_tokens == 200  # it waited for the batch to empty
    finally:
        engine.close()
    assert engine.joined == 0 and answer(short) == answer(alone)
