"""Bad input raises SpdfSimError naming the value and what is allowed; the CLI exits 2."""

import json

import pytest

import hwmodels
import spdf_sim
from spdf_sim import ERK, SpdfSimError
from spdf_sim.cli import main


def test_unknown_model_lists_closest():
    with pytest.raises(SpdfSimError, match=r"unknown model 'gpt3-x1'; did you mean 'gpt3-xl'\?") as info:
        spdf_sim.project("gpt3-x1", 0.5)
    assert "gpt2-small" in str(info.value)


def test_unknown_machine_lists_closest():
    with pytest.raises(SpdfSimError, match=r"unknown machine 'cs2'; did you mean 'cs2-like'\?") as info:
        spdf_sim.project("gpt3-xl", 0.5, hw="cs2")
    assert "a100-80gb" in str(info.value)


@pytest.mark.parametrize("value", [1.0, 1.2, -0.1, float("nan"), float("inf")])
def test_sparsity_out_of_range(value):
    with pytest.raises(SpdfSimError, match=r"out of range \[0, 1\)"):
        spdf_sim.project("gpt2-small", value)


def test_sparsity_not_a_number():
    with pytest.raises(SpdfSimError, match=r"sparsity 'lots' is invalid"):
        spdf_sim.project("gpt2-small", "lots")


def test_glob_matching_nothing():
    with pytest.raises(SpdfSimError, match=r"glob '\*\.conv\*' matches no weight"):
        spdf_sim.project("gpt2-small", {"*.conv*": 0.5})


def test_glob_sparsity_out_of_range():
    with pytest.raises(SpdfSimError, match=r"sparsity for '\*\.mlp\.\*' 1.5 is out of range"):
        spdf_sim.project("gpt2-small", {"*.mlp.*": 1.5})


@pytest.mark.parametrize("tokens", [0, -5, 1.5])
def test_tokens_not_positive(tokens):
    with pytest.raises(SpdfSimError, match=r"tokens .* give a whole number of tokens > 0"):
        spdf_sim.project("gpt2-small", 0.5, tokens=tokens)


def test_erk_unsatisfiable():
    with pytest.raises(SpdfSimError, match=r"ERK sparsity 0.99 over all weight matrices is unsatisfiable"):
        spdf_sim.project("gpt2-small", ERK(0.99, budget="all"))


def test_erk_sparsity_out_of_range():
    with pytest.raises(SpdfSimError, match=r"ERK sparsity 1.0 is out of range"):
        spdf_sim.project("gpt2-small", ERK(1.0))


def test_bad_convention():
    with pytest.raises(SpdfSimError, match=r"unknown FLOP convention 'kaplin'; did you mean 'kaplan'"):
        spdf_sim.project("gpt2-small", 0.5, convention="kaplin")


def test_batch_size_invalid():
    with pytest.raises(SpdfSimError, match=r"batch size 0 is invalid"):
        spdf_sim.project("gpt2-small", 0.5, batch_size=0)


def test_machine_file_without_source(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"kind": "ideal", "numbers": {"peak_flops": {"value": 1e15}}}))
    with pytest.raises(hwmodels.MachineError, match=r"bad.json: number 'peak_flops' needs a value and a source"):
        hwmodels.load_file(path)


def test_every_machine_number_has_source():
    for name in hwmodels.available():
        machine = hwmodels.load(name)
        for key in machine.values:
            assert machine.source(key), f"{name}: {key} has no source"


def test_cli_error_is_one_line(capsys):
    assert main(["project", "gpt3-xl", "--sparsity", "1.2"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "sparsity 1.2 is out of range [0, 1)" in error
    assert "Traceback" not in error


def test_cli_unknown_model_exit_status(capsys):
    assert main(["project", "gpt-5", "--sparsity", "0.5"]) == 2
    assert "unknown model 'gpt-5'" in capsys.readouterr().err


def test_cli_unknown_machine_exit_status(capsys):
    assert main(["project", "gpt3-xl", "--hw", "tpu-v9"]) == 2
    assert "unknown machine 'tpu-v9'" in capsys.readouterr().err


def test_machine_match_ignores_case():
    with pytest.raises(SpdfSimError, match=r"unknown machine 'A100'; did you mean 'a100-80gb'\?"):
        spdf_sim.project("gpt3-xl", 0.5, hw="A100")


def test_sparsity_in_percent_hint():
    with pytest.raises(SpdfSimError, match=r"sparsity 75.0 is out of range \[0, 1\).*\(for 75% give 0.75\)"):
        spdf_sim.project("gpt2-small", 75)


def test_reference_gpu_must_be_gpu():
    with pytest.raises(SpdfSimError, match=r"reference GPU 'cs2-like' is a wafer machine"):
        spdf_sim.project("gpt2-small", 0.5, reference_gpu="cs2-like")


def test_finetune_tokens_negative():
    with pytest.raises(SpdfSimError, match=r"fine-tuning tokens -1 is out of range: give a whole number of tokens >= 0"):
        spdf_sim.project("gpt2-small", 0.5, finetune_tokens=-1)


def test_cli_html_unwritable(capsys, tmp_path):
    target = tmp_path / "missing" / "x.html"
    assert main(["project", "gpt2-small", "--html", str(target)]) == 2
    captured = capsys.readouterr()
    assert f"report {target} could not be written" in captured.err
    assert "Traceback" not in captured.err
    assert "gpt2-small" in captured.out
