"""The trace reader: real runs read back whole, and every kind of damage gives one clear error."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from spdf_sim.errors import SpdfSimError
from spdf_sim.runs import read_run
from spdf_sim.runs.masks import mask_hash
from spdf_sim.runs.records import MASK_DIR, TRACE_FILE, TRACE_FORMAT, TRACE_VERSION
from spdf_sim.training import trace as writer


def lines(run_dir):
    return (run_dir / TRACE_FILE).read_text().splitlines(keepends=True)


def rewrite(run_dir, new_lines):
    (run_dir / TRACE_FILE).write_text("".join(new_lines))


def test_reader_agrees_with_writer():
    assert TRACE_FORMAT == writer.TRACE_FORMAT
    assert TRACE_VERSION == writer.TRACE_VERSION
    assert TRACE_FILE == writer.TRACE_FILE
    assert MASK_DIR == writer.MASK_DIR


def test_mask_hash_agrees_with_writer():
    mask = np.random.default_rng(0).random((7, 13)) < 0.3
    assert mask_hash(mask) == writer.mask_hash(mask)


def test_run_reads_back(tiny_runs):
    run = read_run(tiny_runs["sparse"])
    assert run.finished
    assert run.phases == ["pretrain", "finetune"]
    assert run.steps["step"].tolist() == list(range(1, 19))
    assert run.tokens("pretrain") == 12 * 4 * 16
    assert run.tokens("finetune") == 6 * 2 * 16
    assert run.switch_step == 12
    assert run.model.d_model == 32


def test_masks_match_sparsity(tiny_runs):
    run = read_run(tiny_runs["sparse"])
    record = run.masks_for_step("pretrain", 1)
    mask = run.mask("blocks.0.mlp.fc.weight", record.keys["blocks.0.mlp.fc.weight"])
    assert mask.shape == (64, 32)
    assert mask.sum() == 64 * 32 // 4


def test_density_over_steps(tiny_runs):
    densities = read_run(tiny_runs["sparse"]).nnz_over_steps()
    assert densities.loc[4].max() == pytest.approx(0.25)
    assert densities.loc[18].min() > 0.9


def test_finetune_has_no_masks(tiny_runs):
    run = read_run(tiny_runs["sparse"])
    record = run.masks_for_step("finetune", 13)
    assert record.keys == {}


def test_torn_record_dropped(run_copy, caplog):
    run_dir = run_copy()
    text = (run_dir / TRACE_FILE).read_bytes()
    (run_dir / TRACE_FILE).write_bytes(text[:-25])
    with caplog.at_level(logging.WARNING):
        run = read_run(run_dir)
    assert "torn last record" in caplog.text
    assert not run.finished


def test_zero_tail_dropped(run_copy, caplog):
    run_dir = run_copy()
    with open(run_dir / TRACE_FILE, "ab") as file:
        file.write(b"\x00" * 100)
    with caplog.at_level(logging.WARNING):
        run = read_run(run_dir)
    assert "zero bytes" in caplog.text
    assert run.finished


def test_torn_step_is_not_counted(run_copy):
    run_dir = run_copy()
    kept = [line for line in lines(run_dir) if '"type":"end"' not in line]
    last_step = max(i for i, line in enumerate(kept) if '"type":"step"' in line)
    kept = kept[:last_step] + [kept[last_step][:30]]
    rewrite(run_dir, kept)
    assert len(read_run(run_dir).steps) == 17


def test_newer_version_rejected(run_copy):
    run_dir = run_copy()
    all_lines = lines(run_dir)
    header = json.loads(all_lines[0])
    header["version"] = TRACE_VERSION + 1
    rewrite(run_dir, [json.dumps(header) + "\n"] + all_lines[1:])
    with pytest.raises(SpdfSimError, match="newer") as error:
        read_run(run_dir)
    assert str(run_dir / TRACE_FILE) in str(error.value)
    assert "upgrade spdf-sim" in str(error.value)


def test_missing_mask_file(run_copy):
    run_dir = run_copy()
    victim = sorted((run_dir / MASK_DIR).iterdir())[0]
    victim.unlink()
    run = read_run(run_dir)
    with pytest.raises(SpdfSimError, match="is missing") as error:
        run.load_masks()
    assert str(victim) in str(error.value)


def test_corrupt_mask_file(run_copy):
    run_dir = run_copy()
    victim = sorted((run_dir / MASK_DIR).iterdir())[0]
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(SpdfSimError, match="corrupt") as error:
        read_run(run_dir).load_masks()
    assert str(victim) in str(error.value)


def test_truncated_mask_file(run_copy):
    run_dir = run_copy()
    victim = sorted((run_dir / MASK_DIR).iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:-3])
    with pytest.raises(SpdfSimError, match="truncated"):
        read_run(run_dir).load_masks()


def test_shape_disagrees_with_model(run_copy):
    run_dir = run_copy()
    all_lines = lines(run_dir)
    header = json.loads(all_lines[0])
    header["model"]["d_ff"] = 128
    rewrite(run_dir, [json.dumps(header) + "\n"] + all_lines[1:])
    with pytest.raises(SpdfSimError, match="shape") as error:
        read_run(run_dir)
    assert f"{run_dir / TRACE_FILE}:" in str(error.value)
    assert "mlp.fc.weight" in str(error.value)


def test_header_without_model(run_copy):
    run_dir = run_copy()
    all_lines = lines(run_dir)
    header = json.loads(all_lines[0])
    del header["model"]
    rewrite(run_dir, [json.dumps(header) + "\n"] + all_lines[1:])
    with pytest.raises(SpdfSimError, match="model shape"):
        read_run(run_dir)


def test_damaged_middle_line(run_copy):
    run_dir = run_copy()
    all_lines = lines(run_dir)
    all_lines[5] = all_lines[5][:10] + "\n"
    rewrite(run_dir, all_lines)
    with pytest.raises(SpdfSimError, match="invalid JSON") as error:
        read_run(run_dir)
    assert f"{TRACE_FILE}:6" in str(error.value)


def test_missing_step_rejected(run_copy):
    run_dir = run_copy()
    all_lines = lines(run_dir)
    victim = next(i for i, line in enumerate(all_lines) if '"step":7,' in line
                  and '"type":"step"' in line)
    rewrite(run_dir, all_lines[:victim] + all_lines[victim + 1:])
    with pytest.raises(SpdfSimError, match="missing for steps 7"):
        read_run(run_dir)


def test_unknown_record_type(run_copy):
    run_dir = run_copy()
    rewrite(run_dir, lines(run_dir) + ['{"type":"stepp","step":3}\n'])
    with pytest.raises(SpdfSimError, match="unknown record type 'stepp'"):
        read_run(run_dir)


def test_mask_key_cannot_be_path(run_copy):
    run_dir = run_copy()
    record = {"type": "masks", "phase": "pretrain", "step": 0,
              "masks": {"blocks.0.attn.q.weight": "../../trace"}}
    all_lines = lines(run_dir)
    rewrite(run_dir, all_lines[:1] + [json.dumps(record) + "\n"] + all_lines[1:])
    with pytest.raises(SpdfSimError, match="mask key"):
        read_run(run_dir)


def test_missing_trace(tmp_path):
    with pytest.raises(SpdfSimError, match="not found"):
        read_run(tmp_path)


def test_not_a_trace(tmp_path):
    (tmp_path / TRACE_FILE).write_text('{"type":"header"}\n')
    with pytest.raises(SpdfSimError, match="not an spdf-sim trace"):
        read_run(tmp_path)


def test_binary_trace_is_damaged_not_empty(tmp_path, caplog):
    (tmp_path / TRACE_FILE).write_bytes(bytes(range(1, 256)) * 4)
    with pytest.raises(SpdfSimError, match=r"trace.jsonl:1: invalid JSON record"):
        read_run(tmp_path)
    assert "torn" not in caplog.text


def test_resumed_steps_counted_once(run_copy):
    run_dir = run_copy()
    all_lines = lines(run_dir)
    repeated = [line for line in all_lines if '"type":"step"' in line][8:]
    rewrite(run_dir, all_lines + ['{"type":"resume","step":8}\n'] + repeated)
    run = read_run(run_dir)
    assert len(run.steps) == 18
    assert run.resumed_at == [8]
