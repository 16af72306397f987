import json
import logging

import numpy as np
import pytest
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.trace import TRACE_FILE, load_mask, read_trace


@pytest.fixture(scope="module")
def traced_run(tmp_path_factory, tiny_config, tiny_trainer):
    run_dir = tmp_path_factory.mktemp("run")
    torch.set_num_threads(1)
    trainer = tiny_trainer(tiny_config(), run_dir)
    masks = {name: mask.clone() for name, mask in trainer.masks.masks.items()}
    trainer.train()
    return run_dir, masks


def records_of(run_dir, kind):
    return [r for r in read_trace(run_dir) if r["type"] == kind]


def test_header_is_versioned(traced_run):
    header = read_trace(traced_run[0])[0]
    assert header["format"] == "spdf-sim-trace"
    assert header["version"] == 1
    assert header["seed"] == 1337


def test_one_record_per_step(traced_run):
    steps = records_of(traced_run[0], "step")
    assert [r["step"] for r in steps] == list(range(1, 31))
    assert {r["phase"] for r in steps[:20]} == {"pretrain"}
    assert {r["phase"] for r in steps[20:]} == {"finetune"}
    assert all(r["tokens"] == 4 * 16 for r in steps)


def test_layer_counts_equal_masks(traced_run):
    run_dir, masks = traced_run
    pretrain = [r for r in records_of(run_dir, "layers") if r["phase"] == "pretrain"]
    assert [r["step"] for r in pretrain] == [0, 5, 10, 15, 20]
    for record in pretrain:
        for name, mask in masks.items():
            entry = record["weights"][name]
            assert entry["nnz"] == int(mask.sum()), (record["step"], name)
            assert entry["shape"] == list(mask.shape), name


def test_stored_masks_equal_masks(traced_run):
    run_dir, masks = traced_run
    hashes = records_of(run_dir, "masks")[0]["masks"]
    for name, mask in masks.items():
        stored = load_mask(run_dir, hashes[name], mask.shape)
        assert np.array_equal(stored, mask.numpy()), name


def test_each_mask_stored_once(traced_run):
    run_dir, masks = traced_run
    distinct = {bytes(np.packbits(m.numpy())) + bytes(str(m.shape), "ascii") for m in masks.values()}
    assert len(list((run_dir / "masks").glob("*.npy"))) == len(distinct)


def test_switch_recorded_once(traced_run):
    switches = records_of(traced_run[0], "switch")
    assert len(switches) == 1
    assert switches[0]["step"] == 20


def test_finetune_layers_dense(traced_run):
    last = records_of(traced_run[0], "layers")[-1]
    assert last["phase"] == "finetune"
    for name, entry in last["weights"].items():
        assert entry["mask"] is None, name
        assert entry["nnz"] > 0.9 * np.prod(entry["shape"]), name


def test_torn_last_line_dropped(traced_run, tmp_path, caplog):
    text = (traced_run[0] / TRACE_FILE).read_text()
    (tmp_path / TRACE_FILE).write_text(text + '{"type": "step", "ph')
    with caplog.at_level(logging.WARNING):
        records = read_trace(tmp_path)
    assert len(records) == text.count("\n")
    assert "torn last record" in caplog.text


def test_broken_middle_line_raises(traced_run, tmp_path):
    lines = (traced_run[0] / TRACE_FILE).read_text().splitlines()
    lines[3] = "{not json"
    (tmp_path / TRACE_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(SpdfSimError, match=":4: invalid JSON"):
        read_trace(tmp_path)


def test_other_version_raises(tmp_path):
    header = {"type": "header", "format": "spdf-sim-trace", "version": 99}
    (tmp_path / TRACE_FILE).write_text(json.dumps(header) + "\n")
    with pytest.raises(SpdfSimError, match="trace version 99"):
        read_trace(tmp_path)
