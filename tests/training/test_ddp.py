"""Data-parallel training on 2 gloo ranks, launched with torchrun in a fresh process.

torchrun runs in a subprocess with a time limit: forking ranks from the pytest
process, which already holds torch's thread pools, can deadlock.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")
TIME_LIMIT_S = 300  # a hang limit, not a speed target: the run takes under a minute


@pytest.mark.parametrize("data", [{}, {"format": "corpus"}], ids=["synthetic", "corpus"])
def test_two_ranks_share_masks(tiny_config, tmp_path, data):
    # With the corpus format, rank 0 trains the BPE tokeniser and the other rank loads it.
    run = tiny_config(pretrain={"steps": 4, "grad_accum": 2}, finetune={"steps": 2},
                      model={"vocab": 300 if data else 64}, out_dir=str(tmp_path / "shared"),
                      data={"eval_batches": 1, **data})
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(run.to_dict()))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(WORKER), str(config_path), str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIME_LIMIT_S)
    assert result.returncode == 0, result.stderr[-4000:]

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
    assert (tmp_path / "shared" / "tokenizer.json").exists() == bool(data)
