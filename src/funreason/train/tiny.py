"""A tiny Qwen2-architecture causal LM and byte-level BPE tokenizer, built locally in seconds.

The fast tests use it wherever a real checkpoint would go (the demo uses SmolLM2): it is saved with
`save_pretrained`, so `AutoModelForCausalLM` / `AutoTokenizer.from_pretrained(DIR)` load it
through the same code path as Qwen2.5. `<think>`, `</think>`, `<tool_call>`, `</tool_call>` are
single added tokens that decoding keeps (`<think>` / `</think>` are single tokens in Qwen3's
tokenizer but ordinary BPE text in Qwen2.5's; the `<tool_call>` pair is added in both); `<|im_start|>`, `<|im_end|>`
(end of turn, the EOS) and `<|endoftext|>` (padding) are special tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Qwen2.5's ChatML layout without its tool-calling branches (FunReason prompts with tools in the
# system turn, BFCL style).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TAG_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>"]


@dataclass
class TinyConfig:
    vocab_size: int = 4096
    hidden_size: int = 64
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 8192
    seed: int = 0


def default_corpus() -> Iterator[str]:
    """Texts from the bundled sample, rendered the way training will show them."""
    from funreason.calls import format_answer
    from funreason.chat import system_prompt
    from funreason.formats import Reader
    from funreason.data import bundled

    for ex in Reader(bundled("sample_xlam.jsonl")):
        yield system_prompt(ex.tools)
        yield ex.query
        yield format_answer(ex.reasoning, ex.answer)


def build_tokenizer(corpus: Iterable[str], vocab_size: int = 4096):
    """Train a byte-level BPE on `corpus` and wrap it as a transformers fast tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        clean_up_tokenization_spaces=False,
        model_max_length=8192,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_tiny_model(out: str | Path, corpus: Iterable[str] | None = None, config: TinyConfig | None = None) -> Path:
    """Build and save a tiny tokenizer + Qwen2 model in `out`. Returns the directory.

    Written into a temporary folder beside `out` and renamed into place when complete, so a failed
    write (a full disk) leaves no folder that looks like a model. `out` must not exist, or be
    empty, or hold an earlier tiny model (which is replaced)."""
    from funreason.formats.jsonl import atomic_folder

    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "funreason_tiny.json").exists())):
        raise FileExistsError(f"{out}: exists and is not an empty folder or an earlier tiny model; choose another --out")
    with atomic_folder(out, replace=True) as tmp:  # what is there is empty or an earlier tiny model, checked above
        _build(tmp, corpus, config or TinyConfig())
    return out


def _build(out: Path, corpus: Iterable[str] | None, cfg: TinyConfig) -> None:
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer(corpus if corpus is not None else default_corpus(), cfg.vocab_size)
    torch.manual_seed(cfg.seed)
    model_cfg = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(model_cfg)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=False
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "funreason_tiny.json").write_text(json.dumps(cfg.__dict__, indent=2) + "\n")


def read_corpus(path: str | Path) -> Iterator[str]:
    """A corpus file: one text per line (JSONL rows are used whole, as text); ValueError naming the
    file and line when it is not UTF-8 text."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1})") from None
            if line.strip():
                yield line.rstrip("\n").rstrip("\r")
