"""One rank of the two-rank DDP test, started by torchrun from test_ddp.py.

Usage: torchrun --standalone --nproc-per-node 2 ddp_worker.py CONFIG_JSON OUT_DIR

Each rank trains the run config held in CONFIG_JSON and saves its masks (as
drawn before training) and final weights to OUT_DIR/rank<N>.pt; rank 0 alone
writes the run directory OUT_DIR/run<N>.
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from spdf_sim.training.batches import sources_from_config
from spdf_sim.training.config import config_from_dict
from spdf_sim.training.engine import Trainer, setup_distributed


def main(config_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    out = Path(out_dir)
    run = config_from_dict(json.loads(Path(config_path).read_text()), source=config_path)
    distributed = setup_distributed("cpu")
    config = run.model_config()
    sources = sources_from_config(run, config.vocab, config.context, rank=distributed.rank)
    trainer = Trainer(run, sources, run_dir=out / f"run{distributed.rank}", progress=False,
                      distributed=distributed)
    masks = trainer.masks.state_dict()
    trainer.train()
    weights = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    torch.save({"masks": masks, "weights": weights}, out / f"rank{distributed.rank}.pt")
    dist.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:])
