from pathlib import Path

import numpy as np
import pytest
import torch

from spdf_sim.errors import SpdfSimError
from spdf_sim.training.batches import load_tokens
from spdf_sim.training.config import load_config

GOOD = """\
seed = 3
out_dir = "runs/x"

[model]
preset = "gpt2-small"
context = 64

[pretrain]
steps = 10
batch_size = 2
"""


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_good_config_loads(tmp_path):
    run = load_config(write(tmp_path, GOOD))
    assert run.pretrain.steps == 10
    assert run.model_config().context == 64
    assert run.model_config().d_model == 768


def test_override_sets_value(tmp_path):
    run = load_config(write(tmp_path, GOOD), ["pretrain.lr=1e-3", "sparsity.level=0.5",
                                              "out_dir=runs/bare-word"])
    assert run.pretrain.lr == 1e-3
    assert run.sparsity.level == 0.5
    assert run.out_dir == "runs/bare-word"


def test_override_glob_table(tmp_path):
    run = load_config(write(tmp_path, GOOD), ['sparsity.globs={"*.mlp.*" = 0.9}'])
    assert run.sparsity_spec() == {"*.mlp.*": 0.9}


def test_unknown_file_key_names_line(tmp_path):
    path = write(tmp_path, GOOD + "stepz = 4\n")
    with pytest.raises(SpdfSimError) as error:
        load_config(path)
    message = str(error.value)
    assert f"{path}:11" in message
    assert "unknown config key 'pretrain.stepz'" in message
    assert "did you mean 'pretrain.steps'" in message
    assert "Valid keys:" in message


def test_unknown_section_raises(tmp_path):
    with pytest.raises(SpdfSimError, match=r"unknown config key 'optimizer'"):
        load_config(write(tmp_path, GOOD + "[optimizer]\nlr = 1\n"))


def test_unknown_override_key_raises(tmp_path):
    with pytest.raises(SpdfSimError) as error:
        load_config(write(tmp_path, GOOD), ["pretrain.learning_rate=1e-3"])
    assert "--set pretrain.learning_rate=1e-3" in str(error.value)
    assert "unknown config key 'pretrain.learning_rate'" in str(error.value)


def test_wrong_type_in_file(tmp_path):
    path = write(tmp_path, GOOD.replace("steps = 10", 'steps = "ten"'))
    with pytest.raises(SpdfSimError) as error:
        load_config(path)
    message = str(error.value)
    assert f"{path}:9" in message
    assert "pretrain.steps = 'ten' has the wrong type" in message
    assert "expected an integer, got a string" in message


def test_wrong_type_override(tmp_path):
    with pytest.raises(SpdfSimError) as error:
        load_config(write(tmp_path, GOOD), ["bf16=yes"])
    assert "--set bf16=yes: bf16 = 'yes' has the wrong type" in str(error.value)
    assert "expected true or false" in str(error.value)


def test_float_for_int_rejected(tmp_path):
    with pytest.raises(SpdfSimError, match="pretrain.batch_size = 2.5 has the wrong type"):
        load_config(write(tmp_path, GOOD), ["pretrain.batch_size=2.5"])


def test_out_of_range_value(tmp_path):
    with pytest.raises(SpdfSimError, match=r"sparsity.level = 1.5 is invalid: give the fraction"):
        load_config(write(tmp_path, GOOD), ["sparsity.level=1.5"])


def test_unknown_mask_kind(tmp_path):
    with pytest.raises(SpdfSimError, match="sparsity.mask = 'best' is invalid: give one of random"):
        load_config(write(tmp_path, GOOD), ["sparsity.mask=best"])


def test_invalid_toml_names_file(tmp_path):
    path = write(tmp_path, "seed = = 3\n")
    with pytest.raises(SpdfSimError, match=rf"{path}: invalid TOML.*line 1"):
        load_config(path)


def test_missing_file_raises(tmp_path):
    with pytest.raises(SpdfSimError, match="could not be read"):
        load_config(tmp_path / "absent.toml")


def test_unknown_preset_raises(tmp_path):
    run = load_config(write(tmp_path, GOOD.replace("gpt2-small", "gpt9")))
    with pytest.raises(SpdfSimError, match="unknown model 'gpt9'"):
        run.model_config()


@pytest.mark.parametrize("override, expected", [
    ("device=tpu", "give 'cpu', 'cuda' or 'cuda:N'"),
    ("gpu=tpu", "give one of a100-80gb, h100-sxm"),
    ("gpu=cs2-like", "give one of a100-80gb, h100-sxm"),
])
def test_unknown_device_or_gpu(tmp_path, override, expected):
    with pytest.raises(SpdfSimError, match=f"--set {override}: .* is invalid: {expected}"):
        load_config(write(tmp_path, GOOD), [override])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_device(tmp_path):
    with pytest.raises(SpdfSimError, match="sees no CUDA device: give 'cpu'"):
        load_config(write(tmp_path, GOOD), ["device=cuda"])


@pytest.mark.parametrize("array, expected", [
    (None, "could not be read as npy"),
    (np.array([], dtype=np.int64), "contains no tokens"),
    (np.array([5, -3, 2]), "contains token id -3: token ids must be >= 0"),
])
def test_bad_token_file(tmp_path, array, expected):
    path = tmp_path / "tokens.npy"
    if array is None:
        path.write_bytes(b"")
    else:
        np.save(path, array)
    with pytest.raises(SpdfSimError, match=expected):
        load_tokens(str(path), "npy")


@pytest.mark.parametrize("name", ["tiny.toml", "e2e.toml"])
def test_shipped_configs_load(name):
    path = Path(__file__).resolve().parents[2] / "spdf_sim" / "configs" / name
    run = load_config(path)
    assert run.pretrain.steps > 0
    assert run.finetune.steps > 0
