"""Options that used to be accepted and quietly ignored or misread now get a clear message."""

from __future__ import annotations

import re

import pytest
import torch
from test_cli_experiments import TRAIN, ok

from hwprofiles.errors import HwProfilesError
from hwprofiles.train import TrainConfig, load_checkpoint


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def usage_error(result, *needles: str):
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", result.stderr).split())  # rich wraps the message in a box
    for needle in needles:
        assert needle in text, text
    return result


def test_optimizer_and_schedule_are_choices_case_insensitive(cli, workdir):
    ok(
        cli(
            *TRAIN,
            "--epochs",
            "1",
            "--optimizer",
            "SGD",
            "--schedule",
            "Ramp",
            "--method",
            "nit",
            "--profile",
            "gaussian-additive",
            "-o",
            "m.pt",
        )
    )
    config = load_checkpoint(workdir / "m.pt")["meta"]["config"]
    assert (config["optimizer"], config["schedule"]) == ("sgd", "ramp")
    usage_error(cli(*TRAIN, "--optimizer", "nosuch"), "nosuch", "adam", "sgd")
    usage_error(cli(*TRAIN, "--schedule", "nosuch"), "nosuch", "constant", "ramp")
    assert not (workdir / "hwprofiles-out" / "checkpoints").exists()  # nothing trained


def test_the_library_refuses_what_the_cli_refuses():
    with pytest.raises(HwProfilesError, match="unknown optimizer 'SGD'; choose one of adam, sgd"):
        TrainConfig(optimizer="SGD")  # type: ignore[arg-type]
    with pytest.raises(HwProfilesError, match="unknown schedule 'Ramp'"):
        TrainConfig(schedule="Ramp")  # type: ignore[arg-type]
    with pytest.raises(HwProfilesError, match="width 1000"):
        TrainConfig(width=1000)


def test_devices_are_checked_before_any_work(cli, workdir):
    usage_error(cli(*TRAIN, "--device", "nonsense"), "'nonsense' is not a torch device")
    if not torch.cuda.is_available():
        usage_error(cli(*TRAIN, "--device", "cuda"), "CUDA is not available on this machine")


def test_width_and_log_grid_bounds(cli, workdir):
    usage_error(cli(*TRAIN, "--width", "1000"), "--width")
    usage_error(cli("sweep", "m.pt", "--low", "0"), "0 < --low < --high")


def test_a_boolean_is_not_a_number_of_bits(cli, workdir):
    (workdir / "p.yaml").write_text("name: p\ntechnology: generic\ndescription: d\nadc: {bits: true}\n")
    result = cli("profiles", "validate", "p.yaml")
    assert result.exit_code != 0 and "p.yaml: adc.bits" in result.stderr and "Traceback" not in result.stderr


def test_eval_lists_what_was_converted_and_warns_of_float_layers(cli, workdir, monkeypatch):
    ok(cli(*TRAIN, "--epochs", "1", "-o", "m.pt"))
    result = ok(cli("eval", "m.pt", "-p", "gaussian-additive", "-k", "1", "--quiet", "--conversion"))
    assert "NoisyConv2d" in result.stdout and "NoisyLinear" in result.stdout and "float:" not in result.stdout

    (workdir / "bilinear.py").write_text(
        "import torch, torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(784, 8)\n"
        "        self.mix = nn.Bilinear(8, 8, 10)\n"
        "    def forward(self, x):\n"
        "        h = self.fc(x.flatten(1))\n"
        "        return self.mix(h, h)\n"
    )
    monkeypatch.syspath_prepend(str(workdir))
    import bilinear

    torch.save(bilinear.Net().state_dict(), workdir / "w.pt")
    result = ok(
        cli(
            "eval",
            "--model",
            "bilinear:Net",
            "--weights",
            "w.pt",
            "--dataset",
            "synthetic",
            "-p",
            "gaussian-additive",
            "-k",
            "1",
            "--quiet",
            "--conversion",
        )
    )
    assert "mix" in result.stdout and "float: no noisy twin" in result.stdout
    assert result.stderr.count("warning:") == 1 and "mix" in result.stderr and "Traceback" not in result.stderr
