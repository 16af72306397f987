"""The whole pipeline at CI size: config file, pre-train, switch, fine-tune, trace, projection."""

import json
from pathlib import Path

import numpy as np

import spdf_sim
from spdf_sim.cli import main
from spdf_sim.training.config import config_from_dict
from spdf_sim.training.trace import load_mask, read_trace
from spdf_sim.sparsity import SparsityPlan

TINY_TOML = Path(__file__).resolve().parents[2] / "spdf_sim" / "configs" / "tiny.toml"


def train(argv):
    return main(["train", *argv])


def test_pipeline_end_to_end(tmp_path):
    run_dir = tmp_path / "run"
    code = train([str(TINY_TOML), "--set", f'out_dir="{run_dir}"', "--set", "pretrain.steps=60",
                  "--set", "finetune.steps=30", "--set", "pretrain.warmup=6",
                  "--set", "finetune.warmup=3", "--set", "trace_interval=30"])
    assert code == 0
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished"

    records = read_trace(run_dir)
    losses = [r["loss"] for r in records if r["type"] == "step"]
    assert len(losses) == 90
    assert np.mean(losses[50:60]) < np.mean(losses[:10])
    end = [r for r in records if r["type"] == "end"][0]
    assert end["val_loss"]["finetune"] < np.log(256)

    # Rebuild the plan from the stored masks and project it, as a report would.
    header = records[0]
    layers = [r for r in records if r["type"] == "layers" and r["phase"] == "pretrain"][-1]
    masks = {name: load_mask(run_dir, entry["mask"], entry["shape"])
             for name, entry in layers["weights"].items()}
    plan = SparsityPlan(nnz={n: int(m.sum()) for n, m in masks.items()},
                        sizes={n: m.size for n, m in masks.items()}, description="trace",
                        masks=masks)
    assert plan.sparsity == 0.75
    config = config_from_dict(header["run"]).model_config()
    projection = spdf_sim.project(config, plan, hw="cs2-like", tokens=60 * 16 * 64,
                                  batch_size=16)
    assert projection.hardware["cs2-like"].speedup > 1.0
