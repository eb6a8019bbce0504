"""Run under `torchrun`: `funreason train` with a callback that records what each rank saw and ended with.

    torchrun --nproc_per_node 2 tests/ddp_train.py CONFIG.json RECORD_DIR

CONFIG.json holds TrainConfig fields. Each rank writes RECORD_DIR/rank{R}.json: the world size, the
rows of every batch it trained on (their last tokens, as a fingerprint) and a checksum of every
trained weight, so a test can compare ranks with each other and with a one-process run.
"""

import json
import os
import sys
from pathlib import Path

from transformers import TrainerCallback

from funreason.train.trainer import TrainConfig, end_process_group, train


class Record(TrainerCallback):
    def __init__(self, out: Path):
        self.out = out
        self.batches: list[list[int]] = []

    def on_train_end(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        weights = {n: float(p.detach().double().sum()) for n, p in model.named_parameters() if p.requires_grad}
        rank = int(os.environ.get("RANK", 0))
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"rank{rank}.json").write_text(json.dumps({
            "world_size": int(os.environ.get("WORLD_SIZE", 1)), "steps": state.global_step, "weights": weights,
            "batches": self.batches}))


def main() -> None:
    cfg = TrainConfig(**json.loads(Path(sys.argv[1]).read_text()))
    record = Record(Path(sys.argv[2]))
    import funreason.train.trainer as trainer_module

    collate = trainer_module.SegmentCollator

    class Seen(collate):  # the rows each rank is handed, by a hash of their tokens
        def __call__(self, rows):
            record.batches.append([hash(tuple(r["input_ids"])) for r in rows])
            return super().__call__(rows)

    trainer_module.SegmentCollator = Seen
    try:
        train(cfg, log=lambda *_: None, callbacks=[record])
    finally:
        end_process_group()  # as `funreason train` does at its end


if __name__ == "__main__":
    main()
