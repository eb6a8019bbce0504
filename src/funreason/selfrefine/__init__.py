"""`funreason self-refine`: the paper's self-refinement loop.

Each round, with the current model:
1. rollouts: K samples (reasoning and answer) per query of the source data, sampled with a
   temperature; queries that were hard (no sample kept in the previous round, or rows FCDR left in
   `hard.jsonl`) get `hard_samples` samples instead;
2. FCDR on every sample: the reference answer is known, so format and function & parameter
   correctness are decided by parsing the sample and matching its calls against the reference
   (AST equality; a statement reference needs an answer without calls); the judge(s) then score
   the reasoning of the samples that pass (`prompts/score.txt`: SCORE 0–10 and a verdict;
   several judge endpoints are averaged, a majority of PASS is needed). The passing sample with
   the highest mean score is kept;
3. SRML training of the next model, starting from the current one, on the kept samples of every
   round so far plus the earlier data (`base_data`, e.g. the FCDR output the model was trained on);
4. evaluation: BFCL categories (accuracy per category and their mean) and, if given, exact-call
   accuracy on a held-out split.

Layout of `out`: `round-0/eval` (the starting model), then per round `round-N/samples.jsonl` (one
line per query: every sample, its checks, judge scores, the kept one), `kept.jsonl`, `train.jsonl`,
`train/` (the run, `train/final` the model), `eval/`, `round.json`; and `rounds.json` with
`rounds.png`. Everything resumes: a finished round is read back, a round in progress continues
with the queries not yet in its samples file, training resumes from its last checkpoint, and
evaluation from its result files.

The package: `config` (the verb's settings), `rollouts` (the queries, the samples' checks and
judgements, a round's counts) and `loop` (rounds, training, evaluation, resumption).
"""

from funreason.selfrefine.config import SelfRefineConfig, round_training
from funreason.selfrefine.loop import RoundResult, claim_run, plot_rounds, run_self_refine
from funreason.selfrefine.rollouts import Query, RolloutStats, load_queries, summarise_samples

__all__ = ["Query", "RolloutStats", "RoundResult", "SelfRefineConfig", "claim_run", "load_queries", "plot_rounds",
           "round_training", "run_self_refine", "summarise_samples"]
