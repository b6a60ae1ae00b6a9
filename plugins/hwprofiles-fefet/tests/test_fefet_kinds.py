"""Statistics of the FeFET kinds against their formulas (see hwprofiles_fefet.entries)."""

from __future__ import annotations

import math

import pytest
import torch
from hwprofiles_fefet.entries import FefetMultilevel, FefetRetention
from hwprofiles_fefet.noise import (
    FefetMultilevelNoise,
    FefetRetentionNoise,
    multilevel_state,
    retention_decades,
    state_sigma,
)

import hwprofiles
from hwprofiles.noise import StageContext, WeightState

N = 40_000  # devices per statistic: the std of a std estimate is then about 0.35%
PROFILE = hwprofiles.parse_profile({"name": "t", "technology": "fefet", "description": "kinds under test"})


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one thread avoids thread-pool overhead on a loaded CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def context(seed: int = 0, scale: float = 1.0, **fields: float) -> StageContext:
    return StageContext(generator=torch.Generator().manual_seed(seed), scale=scale, **fields)


def programmed(kind, target: torch.Tensor, **ctx_fields: float) -> torch.Tensor:
    state = WeightState(target=target.double(), g_max_us=10.0)
    kind.program(state, context(g_max_us=10.0, **ctx_fields))
    return state.weights()


def programmed_devices(kind, target: torch.Tensor, **ctx_fields: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The (positive, negative) device conductances after programming, in units of g_max."""
    state = WeightState(target=target.double(), g_max_us=10.0)
    kind.program(state, context(g_max_us=10.0, **ctx_fields))
    g_pos, g_neg = state.conductances()
    return g_pos / 10.0, g_neg / 10.0


def multilevel(**fields) -> FefetMultilevelNoise:
    return FefetMultilevelNoise(FefetMultilevel(**fields), PROFILE)


def retention(**fields) -> FefetRetentionNoise:
    return FefetRetentionNoise(FefetRetention(**fields), PROFILE)


# -- fefet_multilevel ---------------------------------------------------------------------
@pytest.mark.parametrize("bits", [1, 2, 3])
def test_weights_land_on_the_nearest_of_2_to_the_bits_states(bits: int) -> None:
    target = torch.rand(N, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    w = programmed(multilevel(bits_per_cell=bits, n_domains=1e6, sigma_edge=0.0), target, scale=1.0)
    levels = 2**bits - 1
    # n_domains = 1e6 leaves at most 5e-4 of variation: round to see the states
    states = torch.round(w.abs() * levels)
    assert set(states.unique().tolist()) == set(range(levels + 1))
    assert ((w.abs() - states / levels).abs() < 3e-3).all()
    assert ((states / levels - target.abs()).abs() <= 0.5 / levels + 1e-12).all(), "the nearest state"
    on = states > 0
    assert (torch.sign(w[on]) == torch.sign(target[on])).all()


@pytest.mark.parametrize("state", [1, 2, 3, 4, 5, 6, 7])
def test_std_of_each_state_is_the_binomial_formula(state: int) -> None:
    p = state / 7
    kind = multilevel(bits_per_cell=3, n_domains=50.0, sigma_edge=0.02)
    g, _ = programmed_devices(kind, torch.full((N,), p))  # the device holding the weight
    expected = math.sqrt(0.02**2 + p * (1 - p) / 50.0)
    assert float(state_sigma(torch.tensor(p), 50.0, 0.02)) == pytest.approx(expected)
    assert float(g.std()) == pytest.approx(expected, rel=0.03)
    assert float(g.mean()) == pytest.approx(p, abs=4 * expected / math.sqrt(N))


def test_intermediate_states_vary_more_than_the_end_states() -> None:
    kind = multilevel()  # the defaults: 3 bits, 50 domains, 2% at the end states
    stds = {s: float(programmed_devices(kind, torch.full((N,), s / 7))[0].std()) for s in (1, 3, 4, 7)}
    assert stds[3] > 3 * stds[7] and stds[4] > 3 * stds[7]
    assert stds[3] > stds[1]


def test_the_unswitched_device_of_a_pair_stays_non_negative() -> None:
    g_pos, g_neg = programmed_devices(multilevel(sigma_edge=0.05), torch.full((N,), 3 / 7))
    assert (g_neg >= 0).all() and (g_pos >= 0).all()
    # the idle device (p = 0) is max(sigma_edge z, 0): half the devices at 0, mean sigma_edge / sqrt(2 pi);
    # so a weight's mean is pulled down by that much
    assert float((g_neg == 0).double().mean()) == pytest.approx(0.5, abs=0.01)
    assert float(g_neg.mean()) == pytest.approx(0.05 / math.sqrt(2 * math.pi), rel=0.03)
    assert float((g_pos - g_neg).mean()) == pytest.approx(3 / 7 - 0.05 / math.sqrt(2 * math.pi), abs=2e-3)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_noise_scale_multiplies_the_variation_not_the_levels(scale: float) -> None:
    p = 3 / 7
    g, _ = programmed_devices(multilevel(), torch.full((N,), 0.41), scale=scale)  # 0.41 rounds to the state 3/7
    assert float(g.mean()) == pytest.approx(p, abs=4 * scale * 0.08 / math.sqrt(N))
    assert float(g.std()) == pytest.approx(scale * float(state_sigma(torch.tensor(p), 50.0, 0.02)), rel=0.03)


def test_multilevel_state_helper_rounds_and_clips() -> None:
    x = torch.tensor([-0.2, 0.0, 0.07, 0.08, 0.5, 0.99, 1.3])
    assert multilevel_state(x, 3).mul(7).tolist() == pytest.approx([0, 0, 0, 1, 4, 7, 7])


# -- fefet_retention ----------------------------------------------------------------------
@pytest.mark.parametrize("t_s", [1.0, 3600.0, 86_400.0, 3.15e7])
def test_without_spread_every_weight_shrinks_by_one_minus_r(t_s: float) -> None:
    target = torch.rand(1000, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2 - 1
    w = programmed(retention(rate_per_decade=0.02, rate_std=0.0), target, t_inference_s=t_s)
    r = 0.02 * math.log10(1 + t_s / 1.0)
    torch.testing.assert_close(w, target * (1 - r))


def test_the_loss_saturates_with_every_device_at_the_middle_state() -> None:
    kind = retention(rate_per_decade=0.5, rate_std=0.0)
    state = WeightState(target=torch.tensor([0.9, -0.3, 0.0], dtype=torch.float64), g_max_us=10.0)
    kind.program(state, context(g_max_us=10.0, t_inference_s=1e8))  # r = 0.5 * 8 = 4 -> 1
    g_pos, g_neg = state.conductances()
    torch.testing.assert_close(g_pos, torch.full((3,), 5.0, dtype=torch.float64))
    torch.testing.assert_close(g_neg, torch.full((3,), 5.0, dtype=torch.float64))
    assert state.weights().abs().max() < 1e-12


def folded_normal_moments(mu: float, s: float) -> tuple[float, float]:
    """Mean and variance of |N(mu, s^2)|."""
    mean = s * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * s * s)) + mu * math.erf(mu / (s * math.sqrt(2)))
    return mean, mu * mu + s * s - mean * mean


@pytest.mark.parametrize("rate, spread", [(0.02, 0.01), (0.01, 0.02)])
def test_with_spread_the_mean_and_the_pair_offset_follow_the_folded_normal(rate: float, spread: float) -> None:
    t_s = 86_400.0
    decades = retention_decades(t_s, 1.0)
    k_mean, k_var = folded_normal_moments(rate, spread)
    kind = retention(rate_per_decade=rate, rate_std=spread)
    w = programmed(kind, torch.full((N,), 0.8), t_inference_s=t_s)
    assert float(w.mean()) == pytest.approx(0.8 * (1 - k_mean * decades), abs=1e-3)
    # a zero weight: both devices idle at 0 uS, each relaxes toward the middle at its own rate,
    # w = 0.5 (r+ - r-), so Var(w) = 0.5 Var(r) = 0.5 decades^2 Var(k)
    zero = programmed(kind, torch.zeros(N), t_inference_s=t_s)
    assert float(zero.mean()) == pytest.approx(0.0, abs=4 * math.sqrt(0.5 * k_var) * decades / math.sqrt(N))
    assert float(zero.var()) == pytest.approx(0.5 * k_var * decades**2, rel=0.05)


def test_retention_is_absent_at_programming_time() -> None:
    target = torch.linspace(-1, 1, 11, dtype=torch.float64)
    assert torch.equal(programmed(retention(), target, t_inference_s=0.0), target)


def test_compensation_undoes_a_uniform_loss_through_a_layer() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 8)).double().eval()
    x = torch.randn(16, 32, dtype=torch.float64)

    def output(compensation: bool) -> torch.Tensor:
        profile = hwprofiles.parse_profile(
            {
                "name": "retention",
                "technology": "fefet",
                "description": "retention only",
                "t_inference_s": 86_400,
                "noise": [{"kind": "fefet_retention", "rate_std": 0.0, "compensation": compensation}],
            }
        )
        with torch.no_grad():
            return hwprofiles.to_noisy(model, profile).eval()(x)

    with torch.no_grad():
        clean = model(x) - model[0].bias
    r = 0.02 * math.log10(1 + 86_400)
    torch.testing.assert_close(output(False) - model[0].bias, clean * (1 - r))
    torch.testing.assert_close(output(True), model(x))


def test_outputs_shrink_with_time_since_programming() -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 64)
    model = hwprofiles.to_noisy(
        torch.nn.Sequential(torch.nn.Linear(64, 16, bias=False)), "fefet-mlc-3bit", calibration=[x]
    ).eval()
    sizes = []
    for t_s in (1.0, 86_400.0, 3.15e8):
        hwprofiles.program(model, seed=4, t_inference_s=t_s)
        with torch.no_grad():
            sizes.append(float(model(x).abs().mean()))
    assert sizes[0] > sizes[1] > sizes[2]
