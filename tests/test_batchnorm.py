"""recalibrate_batchnorm: statistics of the chip as programmed, the chip itself untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from helpers import make_profile

import hwprofiles


def conv_bn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    )


def test_statistics_are_those_of_the_batches_through_the_programmed_chip():
    static_only = make_profile([{"kind": "pcm_programming"}])  # held per chip: outputs repeatable
    noisy = hwprofiles.to_noisy(conv_bn(), static_only)
    hwprofiles.program(noisy, seed=4)
    noisy.eval()
    batches = [torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    with torch.no_grad():
        conv_out = [noisy[0](x) for x in batches]  # the chip's conv outputs
    hwprofiles.recalibrate_batchnorm(noisy, batches)
    bn = noisy[1]
    expected_mean = torch.stack([y.mean((0, 2, 3)) for y in conv_out]).mean(0)
    expected_var = torch.stack([y.var((0, 2, 3), unbiased=True) for y in conv_out]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected_mean)
    torch.testing.assert_close(bn.running_var, expected_var)
    assert bn.momentum == 0.1 and not noisy.training and not bn.training
    with torch.no_grad():  # the chip instance was not redrawn
        torch.testing.assert_close(noisy[0](batches[0]), conv_out[0])


def test_restores_a_noise_free_model_after_noise_injection_training():
    # BN statistics gathered under strong noise (as NIT leaves them) misfit a noise-free
    # evaluation; recalibrating on noise-free data gives back the float model's statistics.
    model = conv_bn()
    x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(9))
    noisy = hwprofiles.to_noisy(model, hwprofiles.load_profile("gaussian-additive").with_noise_scale(10.0))
    noisy.train()
    with torch.no_grad():
        for _ in range(20):
            noisy(x)
    trained_var = noisy[1].running_var.clone()
    quiet = hwprofiles.set_profile(noisy, "ideal")
    hwprofiles.recalibrate_batchnorm(quiet, [x])
    with torch.no_grad():
        reference = model[0](x).var((0, 2, 3), unbiased=True)
    torch.testing.assert_close(quiet[1].running_var, reference)
    assert (trained_var > 2 * reference).all()  # the noise had inflated them


def test_needs_a_batch_and_leaves_models_without_batch_norm_alone():
    model = conv_bn()
    model[1].running_mean.fill_(0.5)
    with pytest.raises(ValueError, match="at least one batch"):
        hwprofiles.recalibrate_batchnorm(model, [])
    assert torch.equal(model[1].running_mean, torch.full((4,), 0.5))  # the statistics it had are kept
    plain = nn.Linear(3, 2)
    assert hwprofiles.recalibrate_batchnorm(plain, []) is plain
