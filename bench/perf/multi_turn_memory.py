"""Does SRML's chunked head still hold memory at the longest conversation of the multi-turn mix?

Builds `funreason data mix --multi-turn` (the carried open sources) into a temporary folder, renders
every training row one per assistant turn as `train` does (`build_features`, Qwen2.5's vocabulary
and template by default), and takes the longest row: the last turn of the longest conversation,
history and all. Then runs `srml_loss.py`'s two paths at that length, each in its own subprocess,
side by side: the chunked head + loss against full logits + cross-entropy, peak memory and time of
forward + backward, and the ratio. Prints JSON and writes it to `--out`
(bench/results/multi_turn_memory.json).

    python bench/perf/multi_turn_memory.py                      # SmolLM2-135M's head (hidden 576, vocab 49,152), CPU fp32
    python bench/perf/multi_turn_memory.py --hidden 1536 --vocab 151936   # Qwen2.5-1.5B's head (about 20 GB for the plain path)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import add_out, write_result

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "agreement"))


def longest_row(vocab: str, template: str) -> dict:
    """The multi-turn mix's training rows, tokenized as `train` makes them, and the longest."""
    from vocabularies import tokenizer

    from funreason.data.mix import MixConfig, build_mix
    from funreason.formats import Reader
    from funreason.train.data import build_features

    tok = tokenizer(vocab, template)
    with tempfile.TemporaryDirectory() as tmp:
        summary = build_mix(MixConfig(out=str(Path(tmp) / "mix"), multi_turn=True))
        train = [e for e in Reader(Path(tmp) / "mix" / "train.jsonl") if e.meta.get("conversation") == "whole"]
    longest_conv = max(train, key=lambda e: len(e.messages))
    features, report = build_features(train, tok, 1 << 17)
    lengths = sorted(len(f["input_ids"]) for f in features)
    top = max(features, key=lambda f: len(f["input_ids"]))
    return {"vocab": vocab, "template": template, "conversations": len(train), "rows": len(features),
            "sources": {s: summary.train[s] for s in ("glaive-dialogues", "tooltalk", "api-bank")},
            "most_messages": {"id": longest_conv.id, "messages": len(longest_conv.messages) + 1},
            "tokens_longest": lengths[-1], "tokens_median": lengths[len(lengths) // 2],
            "longest_learned_tokens": sum(s != 0 for s in top["segments"])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vocab", type=int, default=49152, help="the head's vocabulary size")
    p.add_argument("--hidden", type=int, default=576)
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--tokenizer", default="qwen2.5", help="the vocabulary the rows are tokenized with")
    p.add_argument("--template", default="qwen25.jinja")
    add_out(p, __file__)
    a = p.parse_args()
    row = longest_row(a.tokenizer, a.template)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "srml.json"
        cmd = [sys.executable, str(HERE / "srml_loss.py"), f"--tokens={row['tokens_longest']}", f"--hidden={a.hidden}",
               f"--vocab={a.vocab}", f"--dtype={a.dtype}", f"--device={a.device}", f"--chunk={a.chunk}", f"--out={out}"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        loss = json.loads(out.read_text())
    cmp = loss.get("chunked_vs_plain", {})
    write_result({"config": {k: v for k, v in vars(a).items() if k != "out"}, "longest_row": row, "paths": loss["paths"],
                  "chunked_vs_plain": cmp,
                  "holds": bool(cmp) and cmp["memory_ratio"] < 0.5}, a.out)


if __name__ == "__main__":
    main()
