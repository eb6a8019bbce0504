"""`funreason self-refine`'s settings: one dataclass, each round's training a nested `TrainConfig`.

Invariant: a config that passes `validate` names a model, existing data files and exactly one
kind of judge; engine command templates are checked before anything starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from funreason.config import cli
from funreason.evaluate import ROUND_CATEGORIES
from funreason.llm.launch import check_template
from funreason.models.ref import check_model_ref
from funreason.train.config import TrainConfig


def round_training() -> TrainConfig:
    """Each round's SRML training, unless the config's `train:` section says otherwise (model,
    data, out and resuming are the round's own; round N trains with the section's seed + N − 1)."""
    return TrainConfig(loss="srml", learning_rate=1e-5, report_to="none", skip_invalid=True)


# what the loop sets for each round's training: a value given for them would be dropped
ROUND_OWN = ("model", "data", "out", "resume")


@dataclass
class SelfRefineConfig:
    """`funreason self-refine`'s settings (command-line options and `--config FILE.yaml` keys; the
    training of each round is the nested `train:` section, any `funreason train` setting but those
    each round sets, `ROUND_OWN`)."""

    model: str = field(default="", metadata=cli("The SRML-trained model to start from (a directory).", required=True))
    data: str = field(default="", metadata=cli("Source data with reference answers (xLAM-style or native).", required=True))
    out: str = field(default="", metadata=cli("Output folder (rounds, models, rounds.json, rounds.png).", "--out", "-o", required=True))
    judge_endpoints: list[str] = field(default_factory=list, metadata=cli(
        "Judge endpoint (OpenAI-compatible); repeat for several judges, whose scores are averaged.", "--judge-endpoint"))
    judge_model: str | None = field(default=None, metadata=cli("Model name the judge endpoints serve."))
    judge: str | None = field(default=None, metadata=cli("Or a local judge model (transformers)."))
    judge_api_key: str | None = field(default=None, metadata=cli("API key of the judge endpoints.", "--api-key", envvar="FUNREASON_JUDGE_API_KEY"))
    rounds: int = field(default=1, metadata=cli("Self-refinement rounds."))
    samples: int = field(default=4, metadata=cli("Samples per query (K)."))
    hard_samples: int = field(default=8, metadata=cli("Samples for hard queries (failed last round, or in --hard)."))
    hard: list[str] = field(default_factory=list, metadata=cli("FCDR hard.jsonl: its rows are hard queries from the start (repeatable)."))
    base_data: list[str] = field(default_factory=list, metadata=cli("Earlier training data, trained on again with the kept samples (repeatable)."))
    limit: int | None = field(default=None, metadata=cli("Only the first N queries of --data."))
    temperature: float = field(default=0.8, metadata=cli("Sampling temperature of the rollouts."))
    max_tokens: int = field(default=512, metadata=cli("Cap on new tokens per sample."))
    batch: int = field(default=16, metadata=cli("Prompts generated together."))
    judge_concurrency: int = 32
    judge_max_tokens: int = field(default=1024, metadata=cli("Cap on the judge's reply tokens."))
    format: str = "auto"
    seed: int = field(default=0, metadata=cli("Seed of the rollouts' sampling."))
    train: TrainConfig = field(default_factory=round_training)
    # evaluation of each round
    eval_categories: list[str] = field(default_factory=lambda: list(ROUND_CATEGORIES),
                                       metadata=cli("BFCL categories evaluated after each round (comma-separated).", csv=True))
    eval_limit: int | None = field(default=None, metadata=cli("First N dev entries of each BFCL category."))
    eval_data: str | None = field(default=None, metadata=cli("A held-out split: exact-call accuracy after each round."))
    eval_max_tokens: int = field(default=512, metadata=cli("Cap on new tokens per evaluation answer."))
    # an inference engine launched per model ('vllm serve {model} --port {port} ...'): rollouts and
    # evaluation go through it instead of in-process transformers; likewise the local judge
    rollout_server: str | None = field(default=None, metadata=cli(
        "Launch an OpenAI-compatible engine on each round's model for rollouts and evaluation, e.g. 'vllm serve {model} --port {port}'; "
        "stopped before training."))
    judge_server: str | None = field(default=None, metadata=cli("Launch the --judge model the same way, e.g. 'vllm serve {model} --port {port}'."))
    engine_start_timeout: float = field(default=900.0, metadata=cli("Seconds a launched engine may take to answer /v1/models."))
    engine_api_key: str | None = field(default=None, metadata=cli(
        "The key a launched engine's command sets itself (e.g. vLLM's --api-key); by default each engine gets a fresh key "
        "in FUNREASON_API_KEY and VLLM_API_KEY.", envvar="FUNREASON_ENGINE_API_KEY"))

    def validate(self) -> "SelfRefineConfig":
        for name in ("model", "data", "out"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        if bool(self.judge_endpoints) == bool(self.judge):
            raise ValueError("give a judge: --judge-endpoint URL (one or more, with --judge-model NAME) or --judge PATH, not both")
        if self.judge_endpoints and not self.judge_model:
            raise ValueError("judge endpoints need the model name they serve (--judge-model)")
        if self.judge_server and not self.judge:
            raise ValueError("--judge-server launches the judge model given by --judge PATH")
        for template in filter(None, [self.rollout_server, self.judge_server]):
            check_template(template)
        if self.rounds < 1 or self.samples < 1 or self.hard_samples < 1:
            raise ValueError("--rounds, --samples and --hard-samples must be at least 1")
        if (self.limit is not None and self.limit < 1) or (self.eval_limit is not None and self.eval_limit < 1):
            raise ValueError("--limit and --eval-limit must be 1 or more")
        if self.judge and self.judge_model:
            raise ValueError("--judge-model names the model the judge endpoints serve; a local --judge takes none")
        self.check_eval_categories()
        self.check_training()
        for p in [self.data, *self.hard, *self.base_data] + ([self.eval_data] if self.eval_data else []):
            if not Path(p).exists():
                raise ValueError(f"{p}: no such file")
        if self.judge:
            check_model_ref(self.judge)
        return self

    def check_eval_categories(self) -> None:
        """Each round is scored on BFCL's dev entries (`evaluate_model`): single-turn categories that
        have some (the live ones are all test entries)."""
        from funreason.evaluate.bfcl_checker import SUPPORTED
        from funreason.evaluate.bfcl_langs import require_grammars
        from funreason.evaluate.splits import load_registry

        registry = load_registry()
        scorable = sorted(c for c in SUPPORTED if c in registry.categories and registry.categories[c].count("dev"))
        unknown = [c for c in self.eval_categories if c not in scorable]
        if unknown or not self.eval_categories:
            raise ValueError(f"--eval-categories: {', '.join(unknown) or 'none given'} cannot be scored each round "
                             f"(a round reads dev entries only); categories with dev entries: {', '.join(scorable)}")
        require_grammars(self.eval_categories)

    def check_training(self) -> None:
        """The `train:` section checked now, not after round 0's evaluation and round 1's rollouts:
        its values are recorded in the run folder, so a mistake found later could not be mended by
        running again."""
        given = [k for k in ROUND_OWN if getattr(self.train, k) != getattr(round_training(), k)]
        if given:
            raise ValueError(f"train: {', '.join(given)} are set by each round (its starting model, its data, "
                             f"round-N/train, resumed when there); leave them out")
        try:
            dataclasses.replace(self.train, model=self.model, data=self.data, out=str(Path(self.out) / "round-1" / "train")).validate()
        except ValueError as e:
            raise ValueError(f"train: {e}") from None
