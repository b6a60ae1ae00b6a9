"""Profiles, noisy models and QAT models survive pickle, deep copies, torch.save and a
trip to another process, and give the same outputs there for the same chip seed."""

from __future__ import annotations

import copy
import io
import multiprocessing
import pickle
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn as nn
from helpers import forward_on_chip, make_profile

import hwprofiles

pytestmark = pytest.mark.usefixtures("one_thread")


def _pickle(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj))


def _torch_save(obj: Any) -> Any:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


ROUND_TRIPS: dict[str, Callable[[Any], Any]] = {"pickle": _pickle, "deepcopy": copy.deepcopy, "torch.save": _torch_save}


@pytest.mark.parametrize("trip", list(ROUND_TRIPS))
@pytest.mark.parametrize("name", ["pcm-joshi2020", "photonic-mzi", "gaussian-additive"])
def test_profiles_round_trip(name: str, trip: str) -> None:
    profile = hwprofiles.load_profile(name).with_noise_scale(0.5)
    again = ROUND_TRIPS[trip](profile)
    assert again == profile and type(again) is type(profile)
    assert again.noise_scale == 0.5 and again.kinds() == profile.kinds()


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.gru = nn.GRU(4, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.relu(self.conv(x)).flatten(2).transpose(1, 2)  # (batch, pixels, channels)
        seq = seq + self.attn(seq, seq, seq, need_weights=False)[0]
        return self.head(self.gru(seq)[0][:, -1])


X = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))


def noisy_model(profile: str = "pcm-joshi2020") -> nn.Module:
    return hwprofiles.to_noisy(Model(), profile, calibration=[X], analog_attention=True)


@pytest.mark.parametrize("trip", list(ROUND_TRIPS))
@pytest.mark.parametrize("profile", ["pcm-joshi2020", "gaussian-combined"])
def test_noisy_models_round_trip_with_the_same_chips(profile: str, trip: str) -> None:
    model = noisy_model(profile)
    again = ROUND_TRIPS[trip](model)
    assert [m.bound for m in hwprofiles.nn.convert.analog_products(again)] == [
        m.bound for m in hwprofiles.nn.convert.analog_products(model)
    ]
    for seed in (3, 4):
        assert torch.equal(forward_on_chip(again, X, seed), forward_on_chip(model, X, seed))
    assert not torch.equal(forward_on_chip(again, X, 3), forward_on_chip(again, X, 4))


@pytest.mark.parametrize("trip", list(ROUND_TRIPS))
def test_qat_models_round_trip(trip: str) -> None:
    model = hwprofiles.to_qat(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), bits=4, learned=True)
    x = torch.randn(3, 4)
    again = ROUND_TRIPS[trip](model)
    assert torch.equal(forward_on_chip(again, x, 0), forward_on_chip(model, x, 0))
    assert [type(m) for m in again.modules()] == [type(m) for m in model.modules()]


def test_models_and_profiles_travel_to_a_spawned_process() -> None:
    model = noisy_model()
    qat = hwprofiles.to_qat(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), bits=4)
    xq = torch.randn(3, 4)
    profile = make_profile([{"kind": "weight_read_noise", "sigma": 0.05}], dac={"bits": 6})
    plain = hwprofiles.to_noisy(nn.Sequential(nn.Linear(4, 2)), profile)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        there = pool.apply(forward_on_chip, (model, X, 5))
        there_qat = pool.apply(forward_on_chip, (qat, xq, 0))
        there_plain = pool.apply(forward_on_chip, (plain, xq, 2))
        assert pool.apply(copy.copy, (profile,)) == profile
    assert torch.equal(there, forward_on_chip(model, X, 5))
    assert torch.equal(there_qat, forward_on_chip(qat, xq, 0))
    assert torch.equal(there_plain, forward_on_chip(plain, xq, 2))
