import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from spdf_sim.training.batches import sources_from_config
from spdf_sim.training.engine import Trainer, setup_distributed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_rank(rank, run, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2",
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed = setup_distributed("cpu")
    config = run.model_config()
    sources = sources_from_config(run, config.vocab, config.context, rank=rank)
    trainer = Trainer(run, sources, run_dir=out_dir / f"run{rank}", progress=False,
                      distributed=distributed)
    masks = trainer.masks.state_dict()
    trainer.train()
    weights = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    torch.save({"masks": masks, "weights": weights}, out_dir / f"rank{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_share_masks(tiny_config, tmp_path):
    run = tiny_config(pretrain={"steps": 4, "grad_accum": 2}, finetune={"steps": 2})
    # fork, so the workers need not re-import this test module by name.
    mp.start_processes(train_rank, args=(run, free_port(), tmp_path), nprocs=2,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]

    assert set(ranks[0]["masks"]) == set(ranks[1]["masks"])
    assert ranks[0]["masks"]
    for name, mask in ranks[0]["masks"].items():
        assert torch.equal(mask, ranks[1]["masks"][name]), name
    for name, weight in ranks[0]["weights"].items():
        assert torch.equal(weight, ranks[1]["weights"][name]), name
    assert (tmp_path / "run0" / "trace.jsonl").exists()
    assert '"state": "finished"' in (tmp_path / "run0" / "status.json").read_text()
    assert not (tmp_path / "run1").exists()
