"""Chip instances: what a seed fixes, what each forward draws afresh, and noise_scale = 0.

``program(model, seed=...)`` draws one chip: its static noise (programming noise,
drift, stuck cells, fabrication errors) is held until the next ``program``, and
per-read noise comes from a stream seeded from the same seed. These tests pin that
contract down bitwise (``torch.equal``) on CPU.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import hwprofiles
from hwprofiles.nn.layers import NoisyLayerMixin

# Small tensors: one thread avoids thread-pool overhead, which dominates on a loaded CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

PROFILES = hwprofiles.list_profiles()
NOISY_PROFILES = [p for p in PROFILES if p != "ideal"]


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 10),
    )


def inputs(seed: int = 1) -> torch.Tensor:
    return torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def converted(profile, seed: int | None = None, **program_args) -> nn.Module:
    model = hwprofiles.to_noisy(small_model(), profile, calibration=[inputs(seed=0)]).eval()
    if seed is not None:
        hwprofiles.program(model, seed=seed, **program_args)
    return model


@torch.no_grad()
def forwards(model: nn.Module, n: int = 3) -> list[torch.Tensor]:
    x = inputs()
    return [model(x) for _ in range(n)]


# -- one seed, one chip ------------------------------------------------------------------
@pytest.mark.parametrize("profile", PROFILES)
def test_same_seed_gives_identical_outputs_across_conversions(profile: str) -> None:
    first, second = forwards(converted(profile, seed=7)), forwards(converted(profile, seed=7))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize("profile", NOISY_PROFILES)
def test_different_seeds_give_different_chips(profile: str) -> None:
    a = forwards(converted(profile, seed=1), n=1)[0]
    b = forwards(converted(profile, seed=2), n=1)[0]
    assert not torch.equal(a, b)


@pytest.mark.parametrize("profile", ["pcm-joshi2020", "rram-neurram", "photonic-mzi", "gaussian-additive"])
def test_program_again_with_the_same_seed_replays_every_forward(profile: str) -> None:
    model = converted(profile, seed=11)
    first = forwards(model)
    hwprofiles.program(model, seed=11)
    second = forwards(model)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], first[1]), "per-read noise advances between forwards"


# -- static noise is held, per-read noise is fresh ---------------------------------------
def test_static_noise_is_held_between_forwards() -> None:
    # rram-hfox has only static noise (programming noise, stuck cells): one chip, one answer.
    a, b = forwards(converted("rram-hfox", seed=3), n=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, forwards(converted("rram-hfox", seed=4), n=1)[0])


def test_per_read_noise_is_fresh_but_programmed_weights_are_held() -> None:
    model = converted("pcm-joshi2020", seed=3)
    layer = model[5]
    x = inputs()
    with torch.no_grad():
        a = model(x)
        held = layer.mvm._chip[1].clone()
        layer.mvm.reset()  # forget the cached chip: it is drawn again from the seed
        b = model(x)
    assert not torch.equal(a, b)  # weight read noise and output noise are per read
    assert torch.equal(layer.mvm._chip[1], held)


def test_static_part_of_a_pcm_profile_alone_is_deterministic() -> None:
    pcm = hwprofiles.load_profile("pcm-joshi2020")
    static_only = pcm.model_copy(update={"noise": [e for e in pcm.noise if e.kind.startswith("pcm_")]})
    a, b = forwards(converted(static_only, seed=3), n=2)
    assert torch.equal(a, b)


def test_training_draws_a_new_chip_every_step() -> None:
    model = converted("rram-hfox", seed=3).train()
    x = inputs()
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))


def test_the_chip_follows_weight_updates() -> None:
    model = converted("rram-hfox", seed=3)
    x = inputs()
    with torch.no_grad():
        model(x)  # programs and caches the chip
        for m in model.modules():
            if isinstance(m, NoisyLayerMixin):
                m.weight.add_(0.05 * torch.randn_like(m.weight))
        after_update = model(x)
        fresh = hwprofiles.to_noisy(hwprofiles.to_clean(model), "rram-hfox").eval()
        fresh.load_state_dict(model.state_dict())  # same calibration
        hwprofiles.program(fresh, seed=3)
        assert torch.equal(after_update, fresh(x))


# -- time since programming -----------------------------------------------------------------
def test_t_inference_s_passed_to_program_changes_drift() -> None:
    model = converted("pcm-joshi2020", seed=5)  # the profile's default is 1 h
    one_hour = forwards(model, n=1)[0]
    hwprofiles.program(model, seed=5, t_inference_s=3600)
    assert torch.equal(forwards(model, n=1)[0], one_hour)
    hwprofiles.program(model, seed=5, t_inference_s=86_400)
    assert not torch.equal(forwards(model, n=1)[0], one_hour)


def test_uncompensated_drift_shrinks_outputs_over_time() -> None:
    drift = hwprofiles.parse_profile(
        {
            "name": "drift",
            "technology": "pcm",
            "description": "drift only",
            "noise": [{"kind": "pcm_drift", "compensation": False}],
        }
    )
    model = converted(drift, seed=5)
    sizes = []
    for t_s in (1.0, 3600.0, 86_400.0):
        hwprofiles.program(model, seed=5, t_inference_s=t_s)
        sizes.append(float(forwards(model, n=1)[0].abs().mean()))
    assert sizes[0] > sizes[1] > sizes[2]


def test_set_profile_keeps_the_chip_seed_and_time() -> None:
    model = converted("pcm-joshi2020", seed=9, t_inference_s=86_400)
    before = forwards(model, n=1)[0]
    hwprofiles.set_profile(model, "rram-hfox")
    hwprofiles.set_profile(model, "pcm-joshi2020")
    assert torch.equal(forwards(model, n=1)[0], before)


# -- noise_scale = 0 is noise-free; with DAC and ADC off as well, the float model -------------
@pytest.mark.parametrize("profile", [p for p in NOISY_PROFILES if hwprofiles.load_profile(p).adc is not None])
def test_noise_scale_zero_removes_the_noise_but_the_converters_still_quantise(profile: str) -> None:
    noise_free = hwprofiles.load_profile(profile).with_noise_scale(0.0)
    x = inputs()
    with torch.no_grad():
        a, b = converted(noise_free, seed=1)(x), converted(noise_free, seed=2)(x)
        assert torch.equal(a, b)  # no chip-to-chip difference: nothing random is left
        assert not torch.equal(a, small_model().eval()(x))  # the ADC's rounding remains


def ideal_copy(profile: str) -> hwprofiles.Profile:
    return hwprofiles.load_profile(profile).model_copy(update={"dac": None, "adc": None, "noise_scale": 0.0})


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_noise_scale_zero_is_exactly_the_float_model(profile: str, mode: str) -> None:
    clean = small_model().train(mode == "train")
    noisy = hwprofiles.to_noisy(clean, ideal_copy(profile)).train(mode == "train")
    x = inputs()
    with torch.no_grad():
        assert torch.equal(noisy(x), clean(x))


@pytest.mark.parametrize("profile", NOISY_PROFILES)
def test_set_profile_to_noise_scale_zero_is_exactly_the_float_model(profile: str) -> None:
    clean = small_model().eval()
    noisy = converted(profile, seed=1)
    x = inputs()
    with torch.no_grad():
        assert not torch.equal(noisy(x), clean(x))
        hwprofiles.set_profile(noisy, ideal_copy(profile).model_copy(update={"noise_scale": 1.0}), noise_scale=0)
        assert torch.equal(noisy(x), clean(x))
