"""Miniature replication of the paper's SRML claim: plain SFT under-weights the short function call
behind a long reasoning; SRML balances them.

Task: a synthetic function-calling generator (the bundled sample's 35 tools and query templates,
argument values copied from the query, one to three offered tools, one or two calls) with a
templated reasoning about 10x longer than the call, like the paper's Table 1. A tiny Qwen2 model
is trained from scratch on identical data, steps and seeds for: SFT, SRML fixed α ∈ {0.2, 0.5,
0.8}, SRML self-adjusted. On a held-out split we report
- result NLL: mean token NLL of the gold call given the gold reasoning (teacher forced);
- call accuracy given the gold reasoning: greedy decoding of the call after the gold think;
- call accuracy end to end: greedy decoding of reasoning and call from the prompt;
  accuracy = the parsed calls equal the gold calls (AST match, order-free);
mean ± std across seeds, and training time. Prints JSON and a Markdown table, and writes the JSON
to `--out` (bench/results/srml_vs_sft.json).

    python bench/replication/srml_vs_sft.py                 # 3 seeds, defaults below (the committed figure)
    python bench/replication/srml_vs_sft.py --quick         # 1 seed, 30 steps, 10 held-out rows: the small run
    python bench/replication/srml_vs_sft.py --seeds 1 --steps 50 --eval 20   # a quick look
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from funreason.calls import format_answer, format_python_call, parse_output
from funreason.chat import RESULT, render_many, render_prompt
from funreason.fit import same_calls
from funreason.data.synth import TOOLS, instantiate
from funreason.schema import Example, Message, Tool
from funreason.train.data import FeatureDataset, SegmentCollator, build_features
from funreason.train.srml import SRMLLoss
from funreason.train.tiny import TinyConfig, build_tiny_model
from funreason.train.trainer import SRMLTrainer, TrainConfig, training_arguments

# Tools are listed compactly in the user turn (signatures) to keep sequences short on a CPU.
SYSTEM = "Answer with your reasoning in <think></think>, then the calls as a Python list."
CONFIGS = [
    ("sft", "sft", 0.5),
    ("srml α=0.2", "fixed", 0.2),
    ("srml α=0.5", "fixed", 0.5),
    ("srml α=0.8", "fixed", 0.8),
    ("srml self", "self", 0.5),
]


def signature(tool) -> str:
    return f"{tool.name}(" + ", ".join(p.name + ("?" if p.xtype.endswith("optional") else "") for p in tool.params) + ")"


def compact(tool) -> Tool:
    props = {p.name: {"type": p.xtype.split(", optional")[0]} for p in tool.params}
    required = [p.name for p in tool.params if not p.xtype.endswith("optional")]
    return Tool(tool.name, "", {"type": "object", "properties": props, "required": required})


def reasoning(query: str, offered, parts) -> str:
    s = [f"The request is: {query}", f"I have {len(offered)} tool(s) to consider."]
    for t in offered:
        use = any(t is p for p, _ in parts)
        params = ", ".join(f"{p.name} ({p.xtype})" for p in t.params)
        s.append(f"Tool {t.name} takes {params}. It can {t.purpose}; "
                 + ("that is what the user asks for, so I will use it." if use else "the user does not ask for that, so I skip it."))
    for t, call in parts:
        s.append(f"For {t.name}:")
        for p in t.params:
            if p.name in call.arguments:
                s.append(f"the query states {p.name} as {call.arguments[p.name]!r}, a {p.xtype.split(',')[0]}, so {p.name}={call.arguments[p.name]!r}.")
            else:
                s.append(f"{p.name} is optional and not mentioned, so I leave it out.")
        s.append(f"That call is {format_python_call(call)}.")
    s.append("Checking again: every required parameter is present, no parameter is invented, "
             "and every value is copied exactly from the request, with its type kept.")
    return " ".join(s)


def make_task(n: int, seed: int) -> list[Example]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        main = r.choice(TOOLS)
        offered = [main, *r.sample([t for t in TOOLS if t is not main], r.randint(0, 2))]
        r.shuffle(offered)
        parts = [(main, instantiate(main, r)) for _ in range(r.choice([1, 1, 2]))]
        query = " Also, ".join(q for _, (q, _) in parts)
        calls = [c for _, (_, c) in parts]
        user = "Tools: " + "; ".join(signature(t) for t in offered) + "\nRequest: " + query
        ex = Example(f"task-{seed}-{i}", [compact(t) for t in offered], [Message("user", user)],
                     reasoning(query, offered, [(t, c) for t, (_, c) in parts]), calls)
        out.append(ex)
    return out


@torch.no_grad()
def greedy(model, tokenizer, prompts: list[str], max_new_tokens: int, batch: int = 32) -> list[str]:
    tokenizer.padding_side = "left"
    outs = []
    for i in range(0, len(prompts), batch):
        enc = tokenizer(prompts[i : i + batch], return_tensors="pt", padding=True, add_special_tokens=False)
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        outs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return outs


@torch.no_grad()
def evaluate(model, tokenizer, held: list[Example]) -> dict[str, float]:
    model.eval()
    rendered = render_many(held, tokenizer, system=SYSTEM)
    nll, n = 0.0, 0
    for r in rendered:
        ids = torch.tensor([r.input_ids])
        logits = model(ids).logits[0, :-1].float()
        tgt = ids[0, 1:]
        seg = torch.tensor(r.segments[1:])
        lp = torch.nn.functional.cross_entropy(logits, tgt, reduction="none")
        nll += float(lp[seg == RESULT].sum())
        n += int((seg == RESULT).sum())
    prompts = [render_prompt(ex, tokenizer, system=SYSTEM) for ex in held]
    given = greedy(model, tokenizer, [p + f"<think>{ex.reasoning}</think>\n\n" for p, ex in zip(prompts, held)], 96)
    full = greedy(model, tokenizer, prompts, 640)
    acc_given = statistics.mean(same_calls(parse_output(g).calls, ex.calls) for g, ex in zip(given, held))
    acc_full = statistics.mean(same_calls(parse_output(g).calls, ex.calls) for g, ex in zip(full, held))
    return {"result_nll": nll / n, "acc_given_think": acc_given, "acc_end_to_end": acc_full}


def run_one(mode, alpha, seed, model_dir, features, tokenizer, a, tmp) -> dict[str, float]:
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    cfg = TrainConfig(model=str(model_dir), data="-", out=str(tmp / f"{mode}-{alpha}-{seed}"), max_steps=a.steps,
                      batch_size=a.batch, learning_rate=a.lr, warmup_ratio=0.05, seed=seed,
                      logging_steps=a.steps, save_steps=10**9, report_to="none")
    trainer = SRMLTrainer(model=model, args=training_arguments(cfg, save_strategy="no", disable_tqdm=True),
                          train_dataset=FeatureDataset(features), srml=SRMLLoss(mode, alpha),
                          data_collator=SegmentCollator(tokenizer.pad_token_id))
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    return {**evaluate(model, tokenizer, a.held), "train_seconds": seconds, "final_alpha": float(trainer.srml.alpha)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--train", type=int, default=2400)
    p.add_argument("--eval", type=int, default=60)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="1 seed, 30 steps, 400 training rows, 10 held-out rows (the small run)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "bench" / "results" / "srml_vs_sft.json",
                   help="write the JSON here (default: bench/results/srml_vs_sft.json)")
    a = p.parse_args()
    if a.quick:
        a.seeds, a.steps, a.train, a.eval = 1, 30, 400, 10
    train_rows, a.held = make_task(a.train, 1), make_task(a.eval, 2)
    results: dict[str, list[dict]] = {name: [] for name, _, _ in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus = [SYSTEM] + [t for ex in train_rows[:800] for t in (ex.query, format_answer(ex.reasoning, ex.answer))]
        model_dir = build_tiny_model(tmp / "tiny", corpus, TinyConfig(vocab_size=2048, hidden_size=a.hidden, intermediate_size=4 * a.hidden,
                                                                       num_hidden_layers=a.layers, num_attention_heads=4, num_key_value_heads=4))
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        features, report = build_features(train_rows, tokenizer, 2048, system=SYSTEM)
        ratio = report.think_tokens / report.result_tokens
        for seed in range(a.seeds):
            for name, mode, alpha in CONFIGS:
                results[name].append(run_one(mode, alpha, seed, model_dir, features, tokenizer, a, tmp))
                print(json.dumps({"config": name, "seed": seed, **results[name][-1]}), flush=True)
    summary = {}
    for name, runs in results.items():
        summary[name] = {}
        for key in runs[0]:
            vals = [r[key] for r in runs]
            summary[name][key] = {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}
    doc = {"setup": {k: v for k, v in vars(a).items() if k not in ("held", "out")}, "think_to_result_tokens": ratio,
           "train_rows": len(features), "summary": summary}
    print(json.dumps(doc, indent=2))
    print(markdown(doc))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(doc, indent=2))


def markdown(doc) -> str:
    f = lambda s, k, d=3: f"{s[k]['mean']:.{d}f} ± {s[k]['std']:.{d}f}"
    rows = ["| loss | result NLL ↓ | call acc. given think ↑ | call acc. end to end ↑ | train s |", "|---|---|---|---|---|"]
    for name, s in doc["summary"].items():
        rows.append(f"| {name} | {f(s, 'result_nll')} | {f(s, 'acc_given_think')} | {f(s, 'acc_end_to_end')} | {s['train_seconds']['mean']:.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
