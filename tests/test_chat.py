"""Chat rendering and prompt / think / result token labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funreason.chat import PROMPT, RESULT, THINK, prompt_messages, render, render_many, render_prompt, system_prompt
from funreason.formats import bfcl, read_examples
from funreason.schema import Call, Example, Message, Tool
from funreason.train.tiny import CHAT_TEMPLATE
from conftest import SAMPLE

TOOL = Tool("get_weather", "Weather for a city.", {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def _example(reasoning="The user names Paris.", answer=None, messages=None):
    return Example(
        "ex-1", [TOOL], messages or [Message("user", "Weather in Paris?")], reasoning,
        [Call("get_weather", {"city": "Paris"})] if answer is None else answer,
    )


def _segment_text(r, tok, seg):
    return tok.decode([i for i, s in zip(r.input_ids, r.segments) if s == seg])


def test_system_prompt_is_bfcl_default_prompt_exactly():
    from bfcl_eval.constants import default_prompts as dp  # constants only: imports nothing

    style = dp.PROMPT_STYLE_TEMPLATES["classic"]
    functions = read_examples(bfcl.question_file("simple_python"))[3].tools
    docs = [t.to_dict() for t in functions]
    official = dp.PROMPT_TEMPLATE_MAPPING["plaintext"].format(
        persona=style["persona"],
        task=style["task"],
        tool_call_format=style["tool_call_no_tag"].format(
            output_format=dp.OUTPUT_FORMAT_MAPPING["python"], param_types=dp.PARAM_TYPE_MAPPING["python"]
        ),
        multiturn_behavior=style["multiturn_behavior"],
        available_tools=style["available_tools"].format(format="json", functions=json.dumps(docs, indent=4)),
    )
    assert dp.DEFAULT_SYSTEM_PROMPT_FORMAT.startswith("ret_fmt=python&tool_call_tag=False&func_doc_fmt=json&prompt_fmt=plaintext&style=classic")
    assert system_prompt(functions) == official


def test_existing_system_turn_follows_the_bfcl_prompt():
    ex = _example(messages=[Message("system", "Be brief."), Message("user", "Weather in Paris?")])
    msgs = prompt_messages(ex)
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"].startswith("You are an expert in composing functions.")
    assert msgs[0]["content"].endswith("\n\nBe brief.")


def test_segments_cover_think_and_result_exactly(tokenizer):
    r = render(_example(), tokenizer)
    assert _segment_text(r, tokenizer, THINK) == "<think>The user names Paris.</think>"
    assert _segment_text(r, tokenizer, RESULT) == "\n\n[get_weather(city='Paris')]<|im_end|>"
    assert _segment_text(r, tokenizer, PROMPT).endswith("<|im_start|>assistant\n\n")  # prompt + trailing newline
    assert r.segments[-1] == PROMPT  # the newline after <|im_end|> carries no loss
    assert r.input_ids == tokenizer(r.text, add_special_tokens=False)["input_ids"]


def test_no_reasoning_statement_and_no_answer(tokenizer):
    plain = render(_example(reasoning=None), tokenizer)
    assert plain.count(THINK) == 0
    assert _segment_text(plain, tokenizer, RESULT) == "[get_weather(city='Paris')]<|im_end|>"
    statement = render(_example(reasoning=None, answer="No tool can do that."), tokenizer)
    assert _segment_text(statement, tokenizer, RESULT) == "No tool can do that.<|im_end|>"
    prompt_only = Example("p", [TOOL], [Message("user", "hi")])
    r = render(prompt_only, tokenizer)
    assert r.count(THINK) == r.count(RESULT) == 0


def test_batch_rendering_equals_one_by_one(tokenizer, sample_examples):
    batch = render_many(sample_examples[:40], tokenizer)
    assert [(b.input_ids, b.segments) for b in batch] == [
        (r.input_ids, r.segments) for r in (render(e, tokenizer) for e in sample_examples[:40])
    ]


def test_straddling_tokens_go_to_the_segment_of_their_last_character():
    """A byte-level BPE without atomic tag tokens merges across '</think>' and into the call."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="isolated")  # merges may cross tags
    tok.decoder = decoders.ByteLevel()
    corpus = ["why</think>\n\n[get_weather(city='Paris')]", "assistant\n<think>why"] * 200
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<|im_start|>", "<|im_end|>"], show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>")
    fast.chat_template = CHAT_TEMPLATE
    r = render(_example(reasoning="why"), fast)
    n = r.think_span[0]  # the prompt and the completion are tokenized apart
    offsets = fast(r.text[:n], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    offsets += [(s + n, e + n) for s, e in fast(r.text[n:], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]]
    (t0, t1), (r0, r1) = r.think_span, r.result_span

    def seg_of(pos):
        return THINK if t0 <= pos < t1 else RESULT if r0 <= pos < r1 else PROMPT

    straddlers = 0
    for (s, e), label in zip(offsets, r.segments):
        assert label == seg_of(e - 1)
        straddlers += seg_of(s) != seg_of(e - 1)
    assert straddlers >= 1, "the corpus should make at least one token cross a boundary"


def test_tokenizer_without_chat_template_is_a_clear_error(tokenizer):
    from transformers import PreTrainedTokenizerFast

    bare = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer)
    with pytest.raises(ValueError, match="no chat template"):
        render(_example(), bare)


TEMPLATES = Path(__file__).parent / "data" / "chat-templates"  # vendored: see its PROVENANCE.md


def _with_template(tokenizer, name: str):
    import copy

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = (TEMPLATES / name).read_text()
    return tok


def test_a_template_that_drops_the_reasoning_still_trains_it_after_its_own_prompt(tokenizer, sample_examples):
    """DeepSeek-R1-Distill's template keeps only what follows `</think>` of assistant content and
    opens `<think>` in its generation prompt: FunReason writes the answer itself, continuing that
    prompt, so the reasoning is trained and the prompt asked at inference is the training prefix."""
    reasoned = next(ex for ex in sample_examples if ex.reasoning)
    r1 = _with_template(tokenizer, "r1distill.jinja")
    r = render(reasoned, r1)
    assert render_prompt(reasoned, r1).endswith("<｜Assistant｜><think>\n") and r.text.startswith(render_prompt(reasoned, r1))
    assert _segment_text(r, r1, THINK) == reasoned.reasoning + "</think>"
    statement = next(ex for ex in sample_examples if isinstance(ex.answer, str) and not ex.reasoning)
    s = render(statement, r1)
    assert s.count(THINK) == 0 and _segment_text(s, r1, RESULT) == f"</think>\n\n{statement.answer}<｜end▁of▁sentence｜>"


def test_a_template_that_never_renders_the_answer_is_one_clear_error(tokenizer, sample_examples):
    from funreason.errors import TemplateError

    mute = _with_template(tokenizer, "qwen25.jinja")
    mute.chat_template = "{% for m in messages %}{% if m.role != 'assistant' %}{{ m.content }}{% endif %}{% endfor %}"
    with pytest.raises(TemplateError, match="does not render the assistant turn's content.*--chat-template"):
        render(sample_examples[0], mute)


def test_stats_and_train_keep_the_reasoning_on_such_a_template_given_with_chat_template(tmp_path, tiny_model_dir):
    """`--chat-template FILE` replaces the model's template; the trained model carries it, so every
    later verb prompts it as it was trained."""
    import subprocess
    import sys

    from transformers import AutoTokenizer


    template = TEMPLATES / "r1distill.jinja"
    common = ["--chat-template", str(template)]
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "stats", str(SAMPLE), "--tokenizer", str(tiny_model_dir),
                           "--json", *common], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    stats = json.loads(proc.stdout)
    assert stats["think"]["count"] == 142 and stats["think"]["mean"] > 10
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "train", "--allow-benchmark-overlap", "--model", str(tiny_model_dir), "--data", str(SAMPLE),
                           "--out", str(run), "--max-steps", "1", "--report-to", "none", *common], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads((run / "data_report.json").read_text())
    assert report["think_tokens"] > 1000
    saved = AutoTokenizer.from_pretrained(run / "final")
    # the template trained with, extended to render `tools` as training did (chat.carry_tools_prompt)
    assert saved.chat_template.endswith(template.read_text()) and saved.chat_template.startswith("{#- funreason: tools")
    proc = subprocess.run([sys.executable, "-m", "funreason.cli", "train", "--allow-benchmark-overlap", "--model", str(tiny_model_dir), "--data", str(SAMPLE),
                           "--out", str(tmp_path / "run2"), "--chat-template", str(tmp_path / "missing.jinja")], capture_output=True, text=True)
    assert proc.returncode == 2 and "missing.jinja: no such file" in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
