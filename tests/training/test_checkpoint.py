import pytest
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training import checkpoint as ckpt
from spdf_sim.training.trace import read_trace, step_records


@pytest.mark.parametrize("stop_at", [10, 20, 25])
def test_resume_matches_uninterrupted(stop_at, tiny_config, tiny_trainer, tmp_path):
    # 10 is mid pre-training, 20 the switch itself, 25 mid fine-tuning.
    run = tiny_config()
    whole = tiny_trainer(run, tmp_path / "whole").train()

    tiny_trainer(run, tmp_path / "cut").train(stop_at=stop_at)
    resumed = tiny_trainer(run, tmp_path / "cut", resume=True).train()

    assert resumed.finished
    assert resumed.losses == whole.losses
    assert resumed.val_loss == whole.val_loss


def test_resume_trace_has_every_step(tiny_config, tiny_trainer, tmp_path):
    run = tiny_config(checkpoint_interval=4)
    tiny_trainer(run, tmp_path).train(stop_at=10)  # last checkpoint at step 8
    result = tiny_trainer(run, tmp_path, resume=True).train()
    steps = step_records(read_trace(tmp_path))
    assert [record["step"] for record in steps] == list(range(1, 31))
    assert [record["loss"] for record in steps] == result.losses


def test_masks_survive_save_and_resume(tiny_config, tiny_trainer, tmp_path):
    run = tiny_config()
    first = tiny_trainer(run, tmp_path)
    first.train(stop_at=10)
    saved = ckpt.load_checkpoint(tmp_path / ckpt.CHECKPOINT_FILE)
    resumed = tiny_trainer(run, tmp_path, resume=True)

    assert set(saved["masks"]) == set(first.masks.masks)
    for name, mask in first.masks.masks.items():
        assert torch.equal(saved["masks"][name], mask), name
        assert torch.equal(resumed.masks.masks[name], mask), name
    assert resumed.masks.nnz() == first.masks.nnz()


def test_checkpoint_names_are_canonical(tiny_config, tiny_trainer, tmp_path):
    tiny_trainer(tiny_config(), tmp_path).train(stop_at=5)
    saved = ckpt.load_checkpoint(tmp_path / ckpt.CHECKPOINT_FILE)
    names = list(saved["model"]) + list(saved["masks"])
    assert not [n for n in names if n.startswith(("module.", "_orig_mod."))]


def test_crash_mid_write_keeps_previous(tiny_config, tiny_trainer, tmp_path, monkeypatch):
    trainer = tiny_trainer(tiny_config(), tmp_path)
    trainer.train(stop_at=5)
    path = tmp_path / ckpt.CHECKPOINT_FILE

    def torn_save(state, file):
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", torn_save)
    trainer.step = 99
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    monkeypatch.undo()

    assert ckpt.load_checkpoint(path)["step"] == 5
    assert sorted(p.name for p in tmp_path.iterdir() if "tmp" in p.name) == []


def test_resume_other_shape_raises(tiny_config, tiny_trainer, tmp_path):
    tiny_trainer(tiny_config(), tmp_path).train(stop_at=5)
    before = {name: (tmp_path / name).read_bytes() for name in ("trace.jsonl", "status.json")}
    wider = tiny_config(model={"d_model": 48})
    with pytest.raises(SpdfSimError, match="another model shape") as error:
        tiny_trainer(wider, tmp_path, resume=True)
    assert "'d_model': 32" in str(error.value)
    assert "'d_model': 48" in str(error.value)
    for name, content in before.items():
        assert (tmp_path / name).read_bytes() == content, name


def test_resume_without_checkpoint_raises(tiny_config, tiny_trainer, tmp_path):
    with pytest.raises(SpdfSimError, match="checkpoint .* not found"):
        tiny_trainer(tiny_config(), tmp_path, resume=True)


def test_new_run_in_used_dir_raises(tiny_config, tiny_trainer, tmp_path):
    tiny_trainer(tiny_config(), tmp_path).train(stop_at=5)
    with pytest.raises(SpdfSimError, match="already contains a run"):
        tiny_trainer(tiny_config(), tmp_path)


def test_interrupted_run_not_finished(tiny_config, tiny_trainer, tmp_path):
    tiny_trainer(tiny_config(), tmp_path).train(stop_at=5)
    status = (tmp_path / "status.json").read_text()
    assert '"state": "stopped"' in status


def test_resume_before_first_checkpoint_restarts(tiny_config, tiny_trainer, tmp_path):
    run = tiny_config(checkpoint_interval=1000)
    tiny_trainer(run, tmp_path).train(stop_at=3)
    assert not (tmp_path / "checkpoint.pt").exists()

    trainer = tiny_trainer(run, tmp_path, resume=True)
    assert not trainer.resumed
    trainer.train()
    steps = [r["step"] for r in read_trace(tmp_path) if r["type"] == "step"]
    assert steps == list(range(1, 31))
    assert '"state": "finished"' in (tmp_path / "status.json").read_text()


def test_resume_finished_run_without_checkpoint_raises(tiny_config, tiny_trainer, tmp_path):
    tiny_trainer(tiny_config(), tmp_path).train()
    (tmp_path / "checkpoint.pt").unlink()
    trace = (tmp_path / "trace.jsonl").read_bytes()
    with pytest.raises(SpdfSimError, match="finished run but no checkpoint.pt"):
        tiny_trainer(tiny_config(), tmp_path, resume=True)
    assert (tmp_path / "trace.jsonl").read_bytes() == trace


def test_interrupt_marks_run_stopped(tiny_config, tiny_trainer, tmp_path, monkeypatch, caplog):
    trainer = tiny_trainer(tiny_config(), tmp_path)
    original = trainer.train_step
    calls = []

    def interrupt_at_seventh(*args):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(trainer, "train_step", interrupt_at_seventh)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert '"state": "stopped"' in (tmp_path / "status.json").read_text()
    assert ("interrupted at step 6 of 30: run again with --resume to continue from the "
            "checkpoint at step 5") in caplog.text
