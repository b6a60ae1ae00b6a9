"""The engine on a GPU: every profile's forward, its noise statistics, evaluation and training.

Marked ``cuda`` and skipped where no GPU is visible; ``benchmarks/gpu_check.sh`` runs them
with the GPU speed figures. ``HWPROFILES_TEST_DEVICE=cpu`` runs the same tests on the CPU
(how they are checked on machines without a GPU: the CPU engine is the reference they hold
the device to, so on the CPU they compare it with itself).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from scipy import stats

import hwprofiles
from hwprofiles.data import load_dataset
from hwprofiles.eval.trained import evaluation_loaders
from hwprofiles.train import TrainConfig, train

DEVICE = torch.device(os.environ.get("HWPROFILES_TEST_DEVICE", "cuda"))
CPU = torch.device("cpu")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="no CUDA device (HWPROFILES_TEST_DEVICE)"
    ),
]


def lenet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return hwprofiles.get_model("lenet5", in_channels=1, num_classes=10).eval()


def inputs(n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def noisy_on(device: torch.device, profile: str, model: nn.Module | None = None) -> nn.Module:
    model = (model or lenet()).to(device)
    noisy = hwprofiles.to_noisy(model, profile, calibration=[inputs(32, seed=1).to(device)])
    return noisy.eval()


@pytest.mark.parametrize("profile", hwprofiles.list_profiles())
def test_every_profile_runs_a_seeded_forward_on_the_device(profile: str) -> None:
    noisy = noisy_on(DEVICE, profile)
    x = inputs().to(DEVICE)
    with torch.no_grad():
        hwprofiles.program(noisy, seed=3)
        first = noisy(x)
        hwprofiles.program(noisy, seed=3)  # the same chip, its read noise from the start again
        again = noisy(x)
        hwprofiles.program(noisy, seed=4)
        other = noisy(x)
    assert first.device.type == DEVICE.type and first.shape == (64, 10)
    assert torch.isfinite(first).all()
    assert torch.equal(first, again)
    assert torch.equal(first, other) == (not hwprofiles.load_profile(profile).noise)


@pytest.mark.parametrize("profile", ["gaussian-additive", "gaussian-multiplicative", "pcm-joshi2020", "rram-neurram"])
def test_the_device_draws_noise_of_the_cpu_engines_distribution(profile: str) -> None:
    """The output error (noisy - float) over many chips on the device and on the CPU: two
    samples of one distribution (Kolmogorov-Smirnov, p > 1e-3), with equal spread."""
    model = lenet()
    x = inputs(16)
    with torch.no_grad():
        float_out = model(x).flatten()

    def errors(device: torch.device) -> torch.Tensor:
        noisy = noisy_on(device, profile, lenet())
        out = []
        with torch.no_grad():
            for seed in range(40):
                hwprofiles.program(noisy, seed=seed)
                out.append(noisy(x.to(device)).flatten().cpu() - float_out)
        return torch.cat(out)

    on_device, on_cpu = errors(DEVICE), errors(CPU)
    assert stats.ks_2samp(on_device.numpy(), on_cpu.numpy()).pvalue > 1e-3
    assert float(on_device.std()) == pytest.approx(float(on_cpu.std()), rel=0.1)


@pytest.fixture(scope="module")
def splits():
    return load_dataset("synthetic")


def test_evaluation_on_the_device_agrees_with_the_cpu(splits) -> None:
    model = lenet()
    loaders = evaluation_loaders(splits)
    test = loaders[1]
    ideal_device = hwprofiles.evaluate(model, test, "ideal", samples=1, device=str(DEVICE))
    ideal_cpu = hwprofiles.evaluate(model, test, "ideal", samples=1)
    n = sum(len(y) for _, y in test)
    assert abs(ideal_device.mean - ideal_cpu.mean) <= 2 / n  # float rounding may flip a tie or two
    calibration = [x for x, _ in list(loaders[0])[:2]]
    pcm_device = hwprofiles.evaluate(
        model, test, "pcm-joshi2020", samples=5, calibration=calibration, device=str(DEVICE)
    )
    pcm_cpu = hwprofiles.evaluate(model, test, "pcm-joshi2020", samples=5, calibration=calibration)
    spread = max(pcm_cpu.std, pcm_device.std, 1 / n)
    assert abs(pcm_device.mean - pcm_cpu.mean) <= 4 * spread  # other draws, one distribution of chips


def test_noise_injection_training_on_the_device_learns_and_loads_on_the_cpu(splits, tmp_path: Path) -> None:
    config = TrainConfig(
        model="lenet5", dataset="synthetic", method="nit", profile="gaussian-additive", epochs=3, batch_size=64, lr=3e-3
    )
    result = train(config, tmp_path / "nit.pt", device=str(DEVICE), progress=False, data=splits)
    losses = [epoch["train_loss"] for epoch in result.history]
    assert losses[-1] < losses[0]
    assert result.test_accuracy > 0.3  # ten classes: chance is 0.1
    from hwprofiles.eval import load_trained

    trained = load_trained(tmp_path / "nit.pt", splits)  # written from the device, read on the CPU
    assert next(trained.model.parameters()).device.type == "cpu"
