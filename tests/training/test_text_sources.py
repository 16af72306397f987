"""Config-driven training on real text: the corpus format, its BPE tokeniser and task fine-tuning."""

import csv
from pathlib import Path

import pytest
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.batches import sources_from_config
from spdf_sim.training.data import TaskBatches, TokenStream
from spdf_sim.training.trace import read_trace

E2E_TOML = Path(__file__).resolve().parents[2] / "spdf_sim" / "configs" / "e2e.toml"
BPE_VOCAB = 300  # the 256 bytes, the special tokens and a few merges

MEANING_REPRESENTATIONS = [
    ("name[The Eagle], eatType[coffee shop], area[riverside]",
     ["The Eagle is a coffee shop by the river.", "By the riverside is The Eagle coffee shop."]),
    ("name[Alimentum], food[Italian], priceRange[cheap]",
     ["Alimentum serves cheap Italian food."]),
    ("name[The Mill], familyFriendly[yes]", ["The Mill is family friendly."]),
    ("name[The Wrestlers], eatType[restaurant], food[English], priceRange[high], "
     "customerRating[average], area[city centre], near[Raja Indian Cuisine]",
     ["The Wrestlers is an expensive English restaurant in the city centre."]),
]


def write_e2e(root):
    """Write a small E2E split in the official CSV format (mr,ref; a row per reference)."""
    folder = root / "e2e"
    folder.mkdir(parents=True)
    for name in ("trainset.csv", "devset.csv"):
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["mr", "ref"])
            for mr, references in MEANING_REPRESENTATIONS:
                for reference in references:
                    writer.writerow([mr, reference])
    return root


def corpus_config(tiny_config, tmp_path, context=16, **data):
    return tiny_config(model={"vocab": BPE_VOCAB, "context": context}, out_dir=str(tmp_path / "run"),
                       pretrain={"steps": 4}, finetune={"steps": 3},
                       data={"format": "corpus", "eval_batches": 1, **data})


def test_default_corpus_trains_and_saves_tokenizer(tiny_config, tiny_trainer, tmp_path):
    run = corpus_config(tiny_config, tmp_path)
    sources = sources_from_config(run, BPE_VOCAB, 16)
    assert isinstance(sources.pretrain, TokenStream)
    assert (tmp_path / "run" / "tokenizer.json").is_file()
    x, y = sources.pretrain.next_batch()
    assert x.shape == (4, 16)
    assert int(x.max()) < BPE_VOCAB
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_saved_tokenizer_reused(tiny_config, tmp_path):
    run = corpus_config(tiny_config, tmp_path)
    first = sources_from_config(run, BPE_VOCAB, 16).pretrain.next_batch()[0]
    saved = (tmp_path / "run" / "tokenizer.json").read_bytes()
    second = sources_from_config(run, BPE_VOCAB, 16).pretrain.next_batch()[0]
    assert torch.equal(first, second)
    assert (tmp_path / "run" / "tokenizer.json").read_bytes() == saved


def test_task_finetuning_end_to_end(tiny_config, tiny_trainer, tmp_path):
    root = write_e2e(tmp_path / "data")
    run = corpus_config(tiny_config, tmp_path, context=64, task="e2e", task_root=str(root))
    trainer = tiny_trainer(run, tmp_path / "run")
    assert isinstance(trainer.sources.finetune, TaskBatches)
    result = trainer.train()
    assert result.finished
    steps = [r for r in read_trace(tmp_path / "run") if r["type"] == "step"]
    assert [r["phase"] for r in steps] == ["pretrain"] * 4 + ["finetune"] * 3
    assert "finetune" in result.val_loss


def test_long_prompts_left_out(tiny_config, tmp_path, caplog):
    root = write_e2e(tmp_path / "data")
    run = corpus_config(tiny_config, tmp_path, context=64, task="e2e", task_root=str(root))
    sources = sources_from_config(run, BPE_VOCAB, 64)
    assert "e2e train: left out 1 of 4 examples" in caplog.text
    assert len(sources.finetune.pairs) == 4  # the 3 kept examples have 4 references


@pytest.mark.parametrize("data, expected", [
    ({"task": "squad"}, "data.task = 'squad' is invalid: give one of e2e, webnlg, dart"),
    ({"format": "text", "pretrain": "x.txt", "task": "e2e"}, "set data.format = \"corpus\""),
    ({"format": "synthetic", "tokenizer": "gpt2"}, "set data.format = \"corpus\""),
])
def test_bad_corpus_settings(tiny_config, tmp_path, data, expected):
    with pytest.raises(SpdfSimError, match=expected):
        corpus_config(tiny_config, tmp_path, **data)


def test_missing_task_split_named(tiny_config, tmp_path):
    (tmp_path / "empty").mkdir()
    run = corpus_config(tiny_config, tmp_path, task="e2e", task_root=str(tmp_path / "empty"))
    with pytest.raises(SpdfSimError, match="data.task: task 'e2e' split 'train' not found"):
        sources_from_config(run, BPE_VOCAB, 16)


def test_tokenizer_folder_without_files(tiny_config, tmp_path):
    run = corpus_config(tiny_config, tmp_path, tokenizer=str(tmp_path))
    with pytest.raises(SpdfSimError, match="contains tokenizer.json, or GPT-2's vocab.json"):
        sources_from_config(run, BPE_VOCAB, 16)


def test_vocab_smaller_than_tokenizer(tiny_config, tmp_path):
    run = corpus_config(tiny_config, tmp_path)
    sources_from_config(run, BPE_VOCAB, 16)
    small = tiny_config(model={"vocab": 280}, out_dir=str(tmp_path / "run"),
                        data={"format": "corpus"})
    with pytest.raises(SpdfSimError, match="raise model.vocab to at least 300"):
        sources_from_config(small, 280, 16)


def test_missing_corpus_file(tiny_config, tmp_path):
    run = corpus_config(tiny_config, tmp_path, pretrain=str(tmp_path / "absent.txt"))
    with pytest.raises(SpdfSimError, match="data.pretrain: corpus file .*absent.txt not found"):
        sources_from_config(run, BPE_VOCAB, 16)
    assert not (tmp_path / "run").exists()


def test_task_root_not_a_folder(tiny_config, tmp_path):
    run = corpus_config(tiny_config, tmp_path, task="e2e", task_root=str(tmp_path / "absent"))
    with pytest.raises(SpdfSimError, match="data.task_root = '.*absent' is not a folder"):
        sources_from_config(run, BPE_VOCAB, 16)


def test_task_root_unset(tiny_config, tmp_path, monkeypatch):
    monkeypatch.delenv("SPDF_SIM_DATA", raising=False)
    run = corpus_config(tiny_config, tmp_path, task="e2e")
    with pytest.raises(SpdfSimError, match="data.task_root is empty and SPDF_SIM_DATA is not set"):
        sources_from_config(run, BPE_VOCAB, 16)


def test_same_train_and_val_split_warns(tiny_config, tmp_path, caplog):
    root = write_e2e(tmp_path / "data")
    run = corpus_config(tiny_config, tmp_path, context=64, task="e2e", task_root=str(root),
                        task_val="train")
    sources_from_config(run, BPE_VOCAB, 64)
    assert "validation loss is measured on training pairs" in caplog.text
    assert caplog.text.count("e2e train: left out") == 1


def test_cli_checks_run_dir_first(tmp_path, monkeypatch, capsys):
    from spdf_sim.cli import main

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "status.json").write_text('{"state": "finished"}\n')
    code = main(["train", str(E2E_TOML), "--set", f"out_dir={run_dir}",
                 "--set", f"data.pretrain={tmp_path / 'absent.txt'}"])
    assert code == 2
    assert "already contains a run" in capsys.readouterr().err


def test_finetune_corpus_read_separately(tiny_config, tmp_path):
    (tmp_path / "downstream.jsonl").write_text(
        '{"text": "' + "the downstream text repeats itself. " * 40 + '"}\n')
    run = corpus_config(tiny_config, tmp_path, finetune=str(tmp_path / "downstream.jsonl"))
    sources = sources_from_config(run, BPE_VOCAB, 16)
    assert len(sources.finetune.tokens) < len(sources.pretrain.tokens)
    missing = corpus_config(tiny_config, tmp_path, finetune=str(tmp_path / "absent.txt"))
    (tmp_path / "run" / "tokenizer.json").unlink()
    with pytest.raises(SpdfSimError, match="data.finetune: corpus file .*absent.txt not found"):
        sources_from_config(missing, BPE_VOCAB, 16)
    assert not (tmp_path / "run" / "tokenizer.json").exists()
