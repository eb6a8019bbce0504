"""The local engine's batching shortcuts change no row: a batch whose prompts share their beginning
runs it once, and finished rows leave the batch, yet every row gets the text it gets alone."""

from __future__ import annotations

from conftest import TOOLS

from funreason.chat import render_prompt
from funreason.llm import SamplingParams
from funreason.llm.local import MIN_SHARED_PREFIX, LocalEngine, shared_prefix
from funreason.schema import Example

QUESTIONS = ["Weather in Paris?", "Tell me a joke.", "Weather in Oslo and in Rome?", "What is 2 + 2?",
             "Is it raining in Lima right now?", "Hello", "Weather in Paris, please, in detail.", "Paris?"]


def test_shared_prefix_counts_the_common_beginning_and_leaves_each_prompt_a_token_of_its_own():
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix([[1, 2, 3], [1, 2, 3]]) == 2  # identical prompts: the last token is each row's own
    assert shared_prefix([[1, 2, 3], [4, 5, 6]]) == 0


def test_a_batch_generates_what_each_prompt_generates_alone(trained_tiny_model_dir):
    alone = LocalEngine.from_pretrained(str(trained_tiny_model_dir), max_batch=1)
    tok, model = alone.tokenizer, alone.model
    # a long wait for batch-mates, so that all the prompts make one batch
    shared = LocalEngine(model, tok, max_batch=len(QUESTIONS), batch_wait_s=1.0)
    plain = LocalEngine(model, tok, max_batch=len(QUESTIONS), batch_wait_s=1.0, share_prefix=False)
    prompts = [render_prompt(Example.from_dict({"id": str(i), "tools": TOOLS, "messages": [{"role": "user", "content": q}]}), tok)
               for i, q in enumerate(QUESTIONS)]
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    assert shared_prefix(ids) >= MIN_SHARED_PREFIX  # the system prompt with the tools: the case this is for
    # budgets from 2 to 40 tokens: rows finish at different steps, so the batch sheds rows as it goes
    params = [SamplingParams(max_tokens=2 + 38 * (i % 2) + i) for i in range(len(prompts))]
    try:
        outs = {}
        for name, engine in (("shared", shared), ("plain", plain), ("alone", alone)):
            futures = [engine.submit(p, sp) for p, sp in zip(prompts, params)]
            outs[name] = [(g.text, g.finish_reason, g.completion_tokens) for g in (f.result(timeout=120) for f in futures)]
        assert outs["shared"] == outs["alone"] == outs["plain"]
        assert shared.batches == 1 and shared.left_early > 0  # one batch, and rows did leave it early
    finally:
        for engine in (shared, plain, alone):
            engine.close()
