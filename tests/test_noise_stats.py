"""Statistics of every built-in noise kind against its formula (NOISE-MODELS.md).

Each kind is tested directly, through a :class:`WeightState` or on a tensor, and
where users meet it, through a noisy layer whose weights or inputs are built to
hit the operating point. Samples are large enough that a tolerance of a few
percent is many standard errors wide, and every draw is seeded.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn as nn
from helpers import make_profile
from scipy import integrate, stats

import hwprofiles
from hwprofiles.errors import NoiseConfigError
from hwprofiles.noise.base import StageContext, WeightState

# Small tensors: one thread avoids thread-pool overhead, which dominates on a loaded CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

N_DEVICES = 200_000
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


# -- helpers ------------------------------------------------------------------------


def make_kind(kind: str, **fields: Any):
    """The implementation of ``kind`` for an entry with ``fields``."""
    model = hwprofiles.get_noise_model(kind)
    entry = model.entry_model(**fields)
    return model.implementation(entry, make_profile([]))


def context(seed: int = 0, scale: float = 1.0, **fields: Any) -> StageContext:
    return StageContext(generator=torch.Generator().manual_seed(seed), scale=scale, **fields)


def programmed(kind, x: float, *, g_max_us: float = 25.0, n: int = N_DEVICES, **ctx_fields: Any) -> WeightState:
    """A WeightState of ``n`` weights at normalised value ``x`` after ``kind.program``."""
    state = WeightState(target=torch.full((n,), float(x), dtype=torch.float64), g_max_us=g_max_us)
    kind.program(state, context(g_max_us=g_max_us, **ctx_fields))
    return state


def noisy_linear(
    profile: hwprofiles.Profile, weight: torch.Tensor, seed: int = 1, calibration: torch.Tensor | None = None
) -> nn.Module:
    """An eval-mode noisy model of one bias-free Linear holding ``weight`` (float64),
    its DAC calibrated on ``calibration`` where the profile calibrates it."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(weight)
    model = hwprofiles.to_noisy(
        nn.Sequential(layer), profile, calibration=None if calibration is None else [calibration]
    )
    hwprofiles.program(model, seed=seed)
    return model.eval()


def pm_ones(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """Random +-1 weights: every output channel has w_max = 1."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (rows, cols), generator=g).double() * 2 - 1


def rel_std_close(measured: float, expected: float, rel: float = 0.015) -> None:
    assert measured == pytest.approx(expected, rel=rel), f"measured {measured:.5g}, formula {expected:.5g}"


# -- PCM programming noise (NOISE-MODELS 2) ------------------------------------------
def pcm_sigma_us(x: float) -> float:
    return max(0.26348 + 1.9650 * x - 1.1731 * x * x, 0.0)


# Variance of max(N(0, s^2), 0) is s^2 (1/2 - 1/(2 pi)): a device held at 0 uS is clamped.
CLAMPED_AT_ZERO_VAR = 0.5 - 0.5 / math.pi


@pytest.mark.parametrize("x, published_us", [(0.0, 0.26), (0.5, 0.95), (1.0, 1.06)])
def test_pcm_programming_std_on_devices(x: float, published_us: float) -> None:
    state = programmed(make_kind("pcm_programming"), x)
    g_pos, g_neg = state.conductances()
    if x == 0.0:
        # Both devices sit at 0 uS and clamp at 0: E[g^2] = s^2 / 2.
        g = torch.cat([g_pos, g_neg])
        assert (g >= 0).all()
        measured = math.sqrt(2 * float((g**2).mean()))
    else:
        measured = float((g_pos - x * 25.0).std())
    rel_std_close(measured, pcm_sigma_us(x))
    assert measured == pytest.approx(published_us, rel=0.03)


def test_pcm_programming_std_through_a_noisy_linear() -> None:
    # Three weight columns at x = 1, 0.5, 0 (w_max = 1 per row); a one-hot input reads each column.
    n_rows = 60_000
    weight = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64).repeat(n_rows, 1)
    model = noisy_linear(make_profile([{"kind": "pcm_programming"}], mapping={"g_max_us": 25.0}), weight)
    with torch.no_grad():
        read = model(torch.eye(3, dtype=torch.float64)).T * 25.0  # programmed weights in uS
    idle_var = pcm_sigma_us(0.0) ** 2 * CLAMPED_AT_ZERO_VAR  # the idle device of the pair
    s_one = math.sqrt(float(read[:, 0].var()) - idle_var)
    s_half = math.sqrt(float(read[:, 1].var()) - idle_var)
    s_zero = math.sqrt(float(read[:, 2].var()) / (2 * CLAMPED_AT_ZERO_VAR))
    for measured, x, published in [(s_zero, 0.0, 0.26), (s_half, 0.5, 0.95), (s_one, 1.0, 1.06)]:
        rel_std_close(measured, pcm_sigma_us(x), rel=0.03)
        assert measured == pytest.approx(published, rel=0.03)


def test_pcm_programming_scales_with_g_max() -> None:
    # s(x) is fitted at 25 uS; at 50 uS the same normalised state has twice the sigma in uS.
    kind = make_kind("pcm_programming")
    a = programmed(kind, 0.5, g_max_us=25.0, seed=3).weights()
    b = programmed(kind, 0.5, g_max_us=50.0, seed=3).weights()
    torch.testing.assert_close(a, b)


# -- PCM drift -------------------------------------------------------------------------
@pytest.mark.parametrize("t_s, published", [(3600.0, 0.77), (86_400.0, 0.66), (365 * 86_400.0, 0.49)])
def test_pcm_drift_factor_with_fixed_nu(t_s: float, published: float) -> None:
    kind = make_kind("pcm_drift", nu_mean=0.05, nu_std=0.0, compensation=False)
    g = programmed(kind, 0.5, n=1000, t_inference_s=t_s).conductances()[0]
    expected = ((t_s + 20.0) / 20.0) ** -0.05
    torch.testing.assert_close(g / 12.5, torch.full_like(g, expected))
    assert expected == pytest.approx(published, abs=0.006)


@pytest.mark.parametrize("t_s", [3600.0, 86_400.0])
def test_pcm_drift_factor_through_a_noisy_linear(t_s: float) -> None:
    profile = make_profile([{"kind": "pcm_drift", "nu_mean": 0.05, "nu_std": 0.0, "compensation": False}])
    weight = pm_ones(8, 16) * torch.rand(8, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = noisy_linear(profile, weight)
    hwprofiles.program(model, seed=1, t_inference_s=t_s)
    x = torch.randn(4, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ((t_s + 20.0) / 20.0) ** -0.05 * (x @ weight.T))


def test_pcm_drift_compensation_undoes_a_uniform_drift() -> None:
    profile = make_profile([{"kind": "pcm_drift", "nu_mean": 0.05, "nu_std": 0.0, "compensation": True}])
    weight = pm_ones(8, 16) * 0.7
    model = noisy_linear(profile, weight)
    hwprofiles.program(model, seed=1, t_inference_s=86_400)
    x = torch.randn(4, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), x @ weight.T)


def alternating(rows: int, cols: int, a: float) -> torch.Tensor:
    """+a, -a, +a, ... along every row: each row sums to zero (an all-ones read gives 0)."""
    w = torch.full((rows, cols), a, dtype=torch.float64)
    w[:, 1::2] = -a
    return w


def drift_factor_moments(mu: float, sd: float, t_s: float, t0_s: float = 20.0) -> tuple[float, float]:
    """E[d] and std(d) of d = ((t + t0)/t0)^-nu, nu ~ |N(mu, sd^2)|, by quadrature."""
    log_t = math.log((t_s + t0_s) / t0_s)

    def moment(k: int) -> float:
        def f(v: float) -> float:
            return math.exp(-k * v * log_t) * stats.foldnorm.pdf(v, mu / sd, scale=sd)

        return integrate.quad(f, 0, mu + 12 * sd)[0]

    m1, m2 = moment(1), moment(2)
    return m1, math.sqrt(m2 - m1 * m1)


def test_pcm_drift_compensation_gain_on_rows_summing_to_zero() -> None:
    # The published law at x = 0.5; the idle device of each pair sits at 0 uS, so the
    # summed conductance is a g_max times the active devices' drift factors: the gain is
    # 1 / mean(d), within 5 standard errors of 1 / E[d] (about ((t + t0)/t0)^mu_nu).
    a, t_s, n = 0.5, 86_400.0, N_DEVICES
    mu = min(max(-0.0155 * math.log(a) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(a) - 0.0059, 0.008), 0.045)
    mean_d, std_d = drift_factor_moments(mu, sd, t_s)
    state = WeightState(target=alternating(n // 100, 100, a), g_max_us=25.0)
    make_kind("pcm_drift").program(state, context(g_max_us=25.0, t_inference_s=t_s))
    gain = float(state.out_gain)
    assert gain == pytest.approx(1 / mean_d, rel=5 * std_d / mean_d / math.sqrt(n))
    assert gain == pytest.approx(((t_s + 20.0) / 20.0) ** mu, rel=0.01)  # the mean drift, undone
    state = WeightState(target=alternating(n // 100, 100, a), g_max_us=25.0)
    make_kind("pcm_drift").program(state, context(g_max_us=25.0, t_inference_s=t_s))
    assert float(state.out_gain) == gain  # seeded


def test_pcm_drift_compensation_on_rows_summing_to_zero_through_a_layer_with_programming_noise() -> None:
    # Fixed nu, so d is independent of the state. The gain's reference counts the idle
    # devices (programmed from 0 uS, clamped: mean s(0)/sqrt(2 pi)), the weights read
    # g_active - g_idle: the expected slope is 1 - E[g_idle] / (a g_max). Per chip it
    # varies by programming noise and drift over n weights; 5 times their bound.
    a, t_s, rows, cols = 0.5, 86_400.0, 64, 128
    n = rows * cols
    mean_d, std_d = drift_factor_moments(0.05, 0.01, t_s)
    expected = 1 - pcm_sigma_us(0.0) / math.sqrt(2 * math.pi) / (a * 25.0)
    tolerance = 5 * math.hypot(pcm_sigma_us(a) / (a * 25.0), 2 * std_d / mean_d) / math.sqrt(n)
    weight = alternating(rows, cols, a)
    drift = {"kind": "pcm_drift", "nu_mean": 0.05, "nu_std": 0.01, "compensation": True}
    profile = make_profile([{"kind": "pcm_programming"}, drift])
    x = torch.randn(16, cols, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    eye = torch.eye(cols, dtype=torch.float64)
    for seed in range(4):
        model = noisy_linear(profile, weight, seed=seed)
        hwprofiles.program(model, seed=seed, t_inference_s=t_s)
        with torch.no_grad():
            read, y = model(eye).T, model(x)
        slope = float((read * weight).sum() / (weight * weight).sum())
        assert slope == pytest.approx(expected, abs=tolerance), f"chip {seed}"
        # not collapsed: outputs keep the clean outputs' size
        assert float(y.norm() / (x @ weight.T).norm()) == pytest.approx(1.0, abs=0.1)
    hwprofiles.program(model, seed=3, t_inference_s=t_s)
    with torch.no_grad():
        torch.testing.assert_close(model(x), y, rtol=0, atol=0)  # seeded


def test_pcm_drift_compensation_undoes_the_mean_drift_of_an_ordinary_layer() -> None:
    # With d independent of w, slope - 1 = (sum w^2 (d - E d) / sum w^2 - sum |w| (d - E d) / sum |w|) / E d
    # to first order; 5 times the bound on its standard deviation.
    t_s = 86_400.0
    weight = pm_ones(64, 128) * torch.rand(64, 128, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mean_d, std_d = drift_factor_moments(0.05, 0.01, t_s)
    w2, w1 = weight.square(), weight.abs()
    spread = w2.square().sum().sqrt() / w2.sum() + w2.sum().sqrt() / w1.sum()
    tolerance = 5 * std_d / mean_d * float(spread)
    drift = {"kind": "pcm_drift", "nu_mean": 0.05, "nu_std": 0.01, "compensation": True}
    model = noisy_linear(make_profile([drift]), weight)
    hwprofiles.program(model, seed=1, t_inference_s=t_s)
    with torch.no_grad():
        read = model(torch.eye(128, dtype=torch.float64)).T
    slope = float((read * weight).sum() / w2.sum())
    assert slope == pytest.approx(1.0, abs=tolerance)
    assert mean_d == pytest.approx(0.66, abs=0.01)  # uncompensated, the outputs would shrink by a third


def folded_normal_mean(mu: float, sd: float) -> float:
    """E|N(mu, sd^2)|."""
    return sd * SQRT_2_OVER_PI * math.exp(-(mu**2) / (2 * sd**2)) + mu * math.erf(mu / (sd * math.sqrt(2)))


@pytest.mark.parametrize("x", [0.001, 0.01, 0.1, 0.5, 1.0])
def test_pcm_drift_exponent_follows_x(x: float) -> None:
    mu = min(max(-0.0155 * math.log(x) + 0.0244, 0.049), 0.1)
    sd = min(max(-0.0125 * math.log(x) - 0.0059, 0.008), 0.045)
    t_s = 86_400.0
    g = programmed(make_kind("pcm_drift", compensation=False), x, t_inference_s=t_s).conductances()[0]
    nu = -torch.log(g / (x * 25.0)) / math.log((t_s + 20.0) / 20.0)
    assert (nu >= 0).all()
    mean = folded_normal_mean(mu, sd)
    rel_std_close(float(nu.mean()), mean, rel=0.01)
    rel_std_close(float(nu.std()), math.sqrt(mu**2 + sd**2 - mean**2), rel=0.02)  # E nu^2 = mu^2 + sd^2


# -- PCM 1/f read noise ----------------------------------------------------------------
@pytest.mark.parametrize("x, t_s", [(0.2, 3600.0), (0.5, 3600.0), (1.0, 86_400.0), (0.005, 1e-6)])
def test_pcm_read_1f_relative_std(x: float, t_s: float) -> None:
    # x = 0.005 hits the cap Q_s = 0.2; t = 1 us keeps the spread small enough not to clamp.
    q_s = min(0.0088 / x**0.65, 0.2)
    expected = q_s * math.sqrt(math.log((t_s + 250e-9) / (2 * 250e-9)))
    g0 = x * 25.0
    g = programmed(make_kind("pcm_read_1f"), x, t_inference_s=t_s).conductances()[0]
    rel_std_close(float(((g - g0) / g0).std()), expected)


# -- RRAM: NeuRRAM relaxation ---------------------------------------------------------
NEURRAM_1S = (-16.815, 45.393, -43.853, 16.030, 0.348)


def neurram_sigma_us(x: float, coefficients=NEURRAM_1S) -> float:
    return sum(c * x ** (len(coefficients) - 1 - i) for i, c in enumerate(coefficients))


@pytest.mark.parametrize("x", [0.3, 0.6, 0.9])
def test_neurram_sigma_at_one_second(x: float) -> None:
    g = programmed(make_kind("rram_relaxation"), x, g_max_us=40.0, t_inference_s=1.0).conductances()[0]
    sigma = neurram_sigma_us(x)
    assert 0.35 <= sigma <= 2.3  # the range NOISE-MODELS quotes at 1 s
    rel_std_close(float((g - 40.0 * x).std()), sigma)


def test_neurram_noise_in_weight_units_does_not_depend_on_g_max() -> None:
    # The polynomials are in uS at g_max = 40 uS; at 80 uS the same state has twice the sigma in
    # uS, so a weight sees the same relative noise (IBM's aihwkit 1.2 forgets this rescaling).
    kind = make_kind("rram_relaxation")
    at_40 = programmed(kind, 0.6, g_max_us=40.0, seed=5).weights() - 0.6
    at_80 = programmed(kind, 0.6, g_max_us=80.0, seed=5).weights() - 0.6
    torch.testing.assert_close(at_80, at_40)
    idle_var = neurram_sigma_us(0.0) ** 2 * CLAMPED_AT_ZERO_VAR  # the pair's idle device, clamped at 0 uS
    rel_std_close(float(at_40.std()), math.sqrt(neurram_sigma_us(0.6) ** 2 + idle_var) / 40.0)


def test_neurram_g_max_through_a_layer() -> None:
    weight = pm_ones(64, 32) * torch.rand(64, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = torch.randn(16, 32, dtype=torch.float64)
    outputs = []
    for g_max in (40.0, 80.0):
        profile = make_profile([{"kind": "rram_relaxation"}], mapping={"g_max_us": g_max}, t_inference_s=86_400)
        with torch.no_grad():
            outputs.append(noisy_linear(profile, weight, seed=2)(x))
    torch.testing.assert_close(outputs[1], outputs[0])
    assert not torch.allclose(outputs[0], x @ weight.T, atol=1e-3)


def test_neurram_unpublished_time_is_a_clear_error() -> None:
    profile = make_profile([{"kind": "rram_relaxation"}], t_inference_s=86_400)
    model = noisy_linear(profile, pm_ones(4, 8))
    with pytest.raises(NoiseConfigError) as info:
        hwprofiles.program(model, seed=1, t_inference_s=3600)
        model(torch.randn(2, 8, dtype=torch.float64))
    message = str(info.value)
    assert "3600" in message
    for valid in ("= 1 ", "86400", "172800"):
        assert valid in message


# -- RRAM: filamentary HfOx (CMO) and stuck cells --------------------------------------
@pytest.mark.parametrize("x", [0.1, 0.5, 1.0])
def test_rram_cmo_sigma_is_linear_in_x(x: float) -> None:
    a, b = 0.0113, 0.0112
    g = programmed(make_kind("rram_cmo", a=a, b=b), x, g_max_us=90.0).conductances()[0]
    rel_std_close(float(((g - 90.0 * x) / 90.0).std()), a + b * x)


def test_stuck_at_fractions_are_binomial() -> None:
    p0, p1 = 0.0175, 0.0904
    state = programmed(make_kind("stuck_at", p_sa0=p0, p_sa1=p1), 0.5, g_max_us=90.0)
    g_pos, g_neg = state.conductances()
    n = g_pos.numel()

    def within_binomial(count: torch.Tensor, p: float) -> None:
        tolerance = 5 * math.sqrt(p * (1 - p) / n)
        assert float(count.double().mean()) == pytest.approx(p, abs=tolerance)

    within_binomial(g_pos == 0, p0)
    within_binomial(g_pos == 90.0, p1)
    within_binomial(g_neg == 90.0, p1)  # the idle device of each pair fails on its own
    assert ((g_pos == 45.0) | (g_pos == 0) | (g_pos == 90.0)).all()


# -- Peripherals: ADC, DAC, output noise -------------------------------------------------
def test_adc_has_at_most_2_to_the_b_levels_and_saturates_at_its_bound() -> None:
    bits, bound = 4, 2.0
    profile = make_profile([], adc={"bits": bits, "bound": bound}, tile={"rows": 64})
    weight = torch.randn(8, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = noisy_linear(profile, weight)
    x = 3 * torch.randn(512, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        y = model(x) / weight.abs().amax(dim=1)  # back to normalised output units
    step = bound / (2 ** (bits - 1) - 1)
    assert y.abs().max() == pytest.approx(bound)  # saturated outputs sit on the bound
    assert (x @ weight.T / weight.abs().amax(dim=1)).abs().max() > 2 * bound
    torch.testing.assert_close(y / step, torch.round(y / step), rtol=0, atol=1e-5)  # the ADC rounds in float32
    for channel in y.T:
        assert channel.unique().numel() <= 2**bits


def test_adc_without_bits_clips_at_its_bound() -> None:
    profile = make_profile([], adc={"bits": None, "bound": 1.5})
    weight = pm_ones(4, 16)
    x = torch.randn(64, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(noisy_linear(profile, weight)(x), (x @ weight.T).clamp(-1.5, 1.5))


def test_dac_has_at_most_2_to_the_b_minus_1_levels_and_clips_at_its_bound() -> None:
    bits, bound = 3, 2.0
    profile = make_profile([], dac={"bits": bits, "bound": bound})
    model = noisy_linear(profile, torch.eye(8, dtype=torch.float64))
    x = 4 * torch.randn(256, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
    assert y.unique().numel() <= 2**bits - 1
    assert y.max() == pytest.approx(bound) and y.min() == pytest.approx(-bound)
    step = bound / (2 ** (bits - 1) - 1)
    assert ((y - x.clamp(-bound, bound)).abs() <= step / 2 + 1e-12).all()


@pytest.mark.parametrize(
    "relative_to, adc_bound, expected",
    [
        ("out_bound", 10.0, 0.04 * 10.0),
        ("out_bound", None, 0.04 * 16),  # without an ADC the bound is the rows in use
        ("absolute", 10.0, 0.04),
    ],
)
def test_output_noise_std(relative_to: str, adc_bound: float | None, expected: float) -> None:
    adc = None if adc_bound is None else {"bits": None, "bound": adc_bound}
    profile = make_profile([{"kind": "output_noise", "sigma": 0.04, "relative_to": relative_to}], adc=adc)
    weight = pm_ones(2000, 16)
    x = 0.05 * torch.randn(64, 16, dtype=torch.float64)
    with torch.no_grad():
        error = noisy_linear(profile, weight)(x) - x @ weight.T
    rel_std_close(float(error.std()), expected)


def test_output_noise_kind_uses_the_context_bound() -> None:
    kind = make_kind("output_noise", sigma=0.04)
    y = torch.zeros(N_DEVICES, dtype=torch.float64)
    rel_std_close(float(kind.tile_outputs(y, context(out_bound=10.0)).std()), 0.4)


# -- Photonic --------------------------------------------------------------------------
def allowed_photonic_weights(bits: int) -> torch.Tensor:
    """cos(phi) for the phases a b-bit voltage DAC sets: phi = pi (k / (2^b - 1))^2."""
    k = torch.arange(2**bits, dtype=torch.float64)
    return torch.cos(math.pi * (k / (2**bits - 1)) ** 2)


def assert_on_levels(w: torch.Tensor, levels: torch.Tensor) -> None:
    distance = (w.reshape(-1, 1) - levels.reshape(1, -1)).abs().amin(dim=1)
    assert distance.max() < 1e-9


def test_photonic_phase_levels_without_gain_variation_or_crosstalk() -> None:
    bits = 4
    kind = make_kind("photonic_phase", bits=bits, gain_sigma=0.0, crosstalk=0.0)
    target = torch.rand(64, 100, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    state = WeightState(target=target, g_max_us=1.0)
    kind.program(state, context(scale=1.0))
    w = state.weights()
    assert torch.arccos(w).unique().numel() <= 2**bits
    assert_on_levels(w, allowed_photonic_weights(bits))
    # the DAC rounds the voltage to the nearest level: the error is at most half a voltage step
    v = torch.sqrt(torch.arccos(target) / math.pi)
    v_set = torch.sqrt(torch.arccos(w) / math.pi)
    assert ((v - v_set).abs() <= 0.5 / (2**bits - 1) + 1e-9).all()


def test_photonic_phase_levels_through_a_layer() -> None:
    bits = 3
    noise = [{"kind": "photonic_phase", "bits": bits, "gain_sigma": 0, "crosstalk": 0, "phase_noise_rad": 0}]
    weight = torch.rand(32, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    model = noisy_linear(make_profile(noise, mapping={"scale": "per_tensor"}), weight)
    w_max = float(weight.abs().max())
    with torch.no_grad():
        w = model(torch.eye(16, dtype=torch.float64)).T / w_max
    assert_on_levels(w, allowed_photonic_weights(bits))


@pytest.mark.parametrize("signal", [0.5, 2.0, 8.0])
def test_photodetector_shot_noise_variance_is_proportional_to_signal(signal: float) -> None:
    kind = make_kind("photodetector", photons_full_scale=1e4, thermal_sigma=0.0)
    y = torch.full((N_DEVICES,), signal, dtype=torch.float64)
    error = kind.tile_outputs(y, context(out_bound=10.0)) - y
    rel_std_close(float(error.var()), signal * 10.0 / 1e4, rel=0.03)


def test_photodetector_thermal_noise_is_signal_independent() -> None:
    kind = make_kind("photodetector", photons_full_scale=None, thermal_sigma=0.01)
    for signal in (0.0, 5.0):
        y = torch.full((N_DEVICES,), signal, dtype=torch.float64)
        rel_std_close(float((kind.tile_outputs(y, context(out_bound=10.0)) - y).std()), 0.1)


# -- SRAM column noise -------------------------------------------------------------------
def test_sram_column_noise_kind_uses_the_rows_in_use() -> None:
    kind = make_kind("sram_column_noise", sigma_percent_fs=0.39)
    y = torch.zeros(N_DEVICES, dtype=torch.float64)
    rel_std_close(float(kind.tile_outputs(y, context(tile_rows=100)).std()), 0.0039 * 100)


def bit_serial_mac_error(x_int, w_int, bits: int, sigma_counts: float, generator) -> torch.Tensor:
    """A bit-serial macro simulated plane by plane: each input bit b against each weight bit k
    gives a binary column sum, converted with Gaussian noise of sigma_counts rows, then
    shifted by 2^(b+k) and added. Returns the error of the result, in full scales
    (rows x (2^bits - 1)^2), after checking that without noise it is the integer MAC."""
    rows = x_int.shape[1]
    exact = x_int @ w_int.T
    shifted, noisy = torch.zeros_like(exact), torch.zeros(exact.shape, dtype=torch.float64)
    for b in range(bits):
        for k in range(bits):
            plane = ((x_int >> b) & 1) @ ((w_int >> k) & 1).T  # binary column sums, 0..rows
            noise = sigma_counts * torch.randn(plane.shape, generator=generator, dtype=torch.float64)
            shifted += plane * 2 ** (b + k)
            noisy += (plane + noise) * 2 ** (b + k)
    assert torch.equal(shifted, exact)
    return (noisy - exact) / (rows * (2**bits - 1) ** 2)


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_sram_bit_serial_noise_is_the_shift_added_conversions_noise(bits: int) -> None:
    # The kind's one draw on the multi-bit MAC must carry the noise of bits x bits noisy
    # conversions of binary column sums (1 LSB = one row of 255), shifted and added.
    rows, generator = 255, torch.Generator().manual_seed(3)
    x_int = torch.randint(0, 2**bits, (64, rows), generator=generator)
    w_int = torch.randint(0, 2**bits, (400, rows), generator=generator)
    simulated = bit_serial_mac_error(x_int, w_int, bits, 0.0039 * rows, generator)
    kind = make_kind("sram_column_noise", sigma_percent_fs=0.39, input_bits=bits, weight_bits=bits)
    drawn = kind.tile_outputs(torch.zeros(N_DEVICES, dtype=torch.float64), context(tile_rows=rows)) / rows
    rel_std_close(float(drawn.std()), float(simulated.std()), rel=0.03)
    assert float(drawn.mean()) == pytest.approx(0.0, abs=5 * float(drawn.std()) / math.sqrt(N_DEVICES))
    if bits == 8:  # the figure the shipped profile's description quotes
        rel_std_close(float(drawn.std()), 0.336 * 0.0039, rel=0.01)


def test_sram_bit_serial_needs_both_bit_counts() -> None:
    with pytest.raises(ValueError, match="input_bits and weight_bits"):
        make_profile([{"kind": "sram_column_noise", "sigma_percent_fs": 0.39, "input_bits": 8}])


def test_sram_cim_8bit_adds_no_quantisation_beyond_the_inputs() -> None:
    # Bit-serial: every binary conversion is exact and the shift-added sum digital, so with
    # the column noise off the layer computes the DAC-quantised inputs times the weights.
    profile = hwprofiles.load_profile("sram-cim-8bit")
    weight = pm_ones(64, 300) * torch.rand(64, 300, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x = torch.rand(32, 300, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x[0] = 1.0  # calibration takes the 99.99th percentile of |x| as the DAC bound: make it 1
    model = noisy_linear(profile.with_noise_scale(0.0), weight, calibration=x)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, x.mul(127).round().div(127) @ weight.T, rtol=0, atol=1e-5)
    # with the noise on: two tiles of 150 rows, each 0.131% of 150 rows
    model = noisy_linear(profile, pm_ones(2000, 300), calibration=x)
    with torch.no_grad():
        error = model(x) - x.mul(127).round().div(127) @ pm_ones(2000, 300).T
    rel_std_close(float(error.std()), 0.0039 * 0.33595 * 150 * math.sqrt(2), rel=0.03)


@pytest.mark.parametrize(
    "fan_in, tile_rows, rows_used, tiles",
    [
        (100, 255, 100, 1),
        (255, 255, 255, 1),
        (300, 255, 150, 2),  # split evenly: two tiles of 150 rows
        (300, None, 300, 1),
    ],
)
def test_sram_column_noise_std_through_a_linear(fan_in, tile_rows, rows_used, tiles) -> None:
    tile = None if tile_rows is None else {"rows": tile_rows}
    profile = make_profile([{"kind": "sram_column_noise", "sigma_percent_fs": 0.39}], tile=tile)
    weight = pm_ones(2000, fan_in)
    x = torch.rand(32, fan_in, dtype=torch.float64)
    with torch.no_grad():
        error = noisy_linear(profile, weight)(x) - x @ weight.T
    rel_std_close(float(error.std()), 0.0039 * rows_used * math.sqrt(tiles))


def test_sram_column_noise_std_through_a_tiled_conv() -> None:
    # 64 channels of 3x3 kernels on 256-row tiles: 28 channels fit a tile, so 3 tiles of 22 channels.
    profile = make_profile([{"kind": "sram_column_noise", "sigma_percent_fs": 0.39}], tile={"rows": 256})
    conv = nn.Conv2d(64, 256, 3, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randint(0, 2, conv.weight.shape).double() * 2 - 1)
    model = hwprofiles.to_noisy(nn.Sequential(conv), profile).eval()
    x = torch.rand(2, 64, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        error = model(x) - conv(x)
    rel_std_close(float(error.std()), 0.0039 * 22 * 9 * math.sqrt(3), rel=0.03)


# -- The seed study's Gaussian models -----------------------------------------------------
def identity_model(profile: hwprofiles.Profile, n: int) -> nn.Module:
    return noisy_linear(profile, torch.eye(n, dtype=torch.float64))


def test_additive_gaussian_std_is_sigma_in_activation_units() -> None:
    model = identity_model(make_profile([{"kind": "gaussian_additive", "sigma": 0.3}]), 100)
    x = 5 * torch.randn(2000, 100, dtype=torch.float64)
    with torch.no_grad():
        rel_std_close(float((model(x) - x).std()), 0.3)


def test_multiplicative_gaussian_std_is_sigma_times_output() -> None:
    model = identity_model(make_profile([{"kind": "gaussian_multiplicative", "sigma": 0.2}]), 100)
    x = torch.tensor([0.5, -3.0], dtype=torch.float64).repeat(1000, 50)
    with torch.no_grad():
        error = model(x) - x
    rel_std_close(float(error[:, 0::2].std()), 0.2 * 0.5)
    rel_std_close(float(error[:, 1::2].std()), 0.2 * 3.0)


def test_combined_gaussian_follows_its_formula() -> None:
    amplitude, ratio = 0.4, 0.25
    model = identity_model(make_profile([{"kind": "gaussian_combined", "amplitude": amplitude, "ratio": ratio}]), 99)
    levels = [0.0, 1.0, -3.0]
    x = torch.tensor(levels, dtype=torch.float64).repeat(2000, 33)
    with torch.no_grad():
        error = model(x) - x
    for i, y in enumerate(levels):
        expected = math.hypot(amplitude * (1 - ratio) * y, amplitude * ratio)
        rel_std_close(float(error[:, i::3].std()), expected)


def test_variance_aware_sigma_is_drawn_per_sample_in_training() -> None:
    sigma, alpha, theta = 0.5, 0.45, 0.66
    noise = [{"kind": "gaussian_additive", "sigma": sigma, "per_sample": {"alpha": alpha, "theta": theta}}]
    model = identity_model(make_profile(noise), 256)
    x = torch.zeros(20_000, 256, dtype=torch.float64)
    with torch.no_grad():
        per_sample = model.train()(x).pow(2).mean(dim=1).sqrt()
        eval_sigma = model.eval()(x).std()
    # The entry reads theta relative to sigma: sigma_s = sigma (alpha + theta |z|), so
    # E[sigma_s] = sigma (alpha + theta E|z|), E|z| = sqrt(2/pi) (alpha sigma + theta E|z| at sigma = 1).
    rel_std_close(float(per_sample.mean()), sigma * (alpha + theta * SQRT_2_OVER_PI), rel=0.02)
    assert float(per_sample.min()) == pytest.approx(alpha * sigma, rel=0.25)  # |z| >= 0
    rel_std_close(float(eval_sigma), sigma)  # evaluation uses the nominal sigma


# -- noise_scale --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "noise",
    [
        {"kind": "gaussian_additive", "sigma": 0.1},
        {"kind": "output_noise", "sigma": 0.04},
        {"kind": "weight_read_noise", "sigma": 0.02},
        {"kind": "sram_column_noise", "sigma_percent_fs": 0.39},
        {"kind": "photodetector", "photons_full_scale": 1e4, "thermal_sigma": 0.005},
    ],
    ids=lambda n: n["kind"],
)
def test_noise_scale_multiplies_per_read_noise(noise: dict[str, Any]) -> None:
    weight = pm_ones(16, 32)
    x = torch.rand(8, 32, dtype=torch.float64)
    profile = make_profile([noise], adc={"bits": None, "bound": 1000.0})
    model = noisy_linear(profile, weight)
    errors = []
    for scale in (1.0, 2.0):
        hwprofiles.set_profile(model, profile, noise_scale=scale)  # keeps the chip seed
        with torch.no_grad():
            errors.append(model(x) - x @ weight.T)
    assert errors[0].abs().max() > 0
    torch.testing.assert_close(errors[1], 2 * errors[0])


@pytest.mark.parametrize(
    "kind, fields, g_max_us, t_s",
    [
        ("pcm_programming", {}, 25.0, 1.0),
        ("pcm_read_1f", {}, 25.0, 3600.0),
        ("rram_relaxation", {}, 40.0, 86_400.0),
        ("rram_cmo", {}, 90.0, 1.0),
    ],
)
def test_noise_scale_multiplies_programming_noise(kind: str, fields, g_max_us: float, t_s: float) -> None:
    impl = make_kind(kind, **fields)
    deltas = []
    for scale in (1.0, 2.0):
        g = programmed(impl, 0.9, g_max_us=g_max_us, n=10_000, scale=scale, t_inference_s=t_s).conductances()[0]
        deltas.append(g - 0.9 * g_max_us)
    assert deltas[0].abs().max() > 0
    torch.testing.assert_close(deltas[1], 2 * deltas[0])


# -- Weight read noise (NOISE-MODELS 2, per-MVM short-term read noise) ----------------------
# The std of a std estimate from n Gaussian draws is sigma / sqrt(2n); with n >= 100,000 the
# 1.5% tolerance of rel_std_close is more than 6 standard errors, and a factor 2 is far off.
def test_weight_read_noise_kind_std_is_sigma() -> None:
    kind = make_kind("weight_read_noise", sigma=0.0175)
    w = torch.full((N_DEVICES,), 0.3, dtype=torch.float64)
    rel_std_close(float((kind.read(w, context()) - w).std()), 0.0175)


def test_weight_read_noise_std_is_a_fraction_of_w_max_through_a_linear() -> None:
    # Every output channel has w_max = 0.5 (per-channel mapping); a one-hot input reads each
    # weight, so the read error is sigma * w_max per weight.
    sigma, w_max = 0.0175, 0.5
    model = noisy_linear(make_profile([{"kind": "weight_read_noise", "sigma": sigma}]), w_max * pm_ones(1000, 100))
    eye = torch.eye(100, dtype=torch.float64)
    with torch.no_grad():
        first, second = model(eye), model(eye)
    weight = model[0].weight.detach().T
    rel_std_close(float((first - weight).std()), sigma * w_max)  # 100,000 draws
    # fresh on every read: two reads differ by sqrt(2) sigma
    rel_std_close(float((first - second).std()), math.sqrt(2) * sigma * w_max)


# -- Photonic: phase noise, gain variation, thermal crosstalk (NOISE-MODELS 4) ------------------
# At phi = pi/2 (w = 0) a phase error e gives w' = cos(pi/2 + e) = -sin(e), so
# e = -arcsin(w') exactly: the phase errors are read back without approximation.
def photonic_ideal(**fields: Any) -> dict[str, Any]:
    """A photonic_phase entry with every effect off except ``fields``."""
    return {
        "kind": "photonic_phase",
        "bits": None,
        "gain_sigma": 0.0,
        "crosstalk": 0.0,
        "phase_noise_rad": 0.0,
        **fields,
    }


def test_photonic_phase_noise_std_is_phase_noise_rad() -> None:
    entry = photonic_ideal(phase_noise_rad=0.05)
    del entry["kind"]
    kind = make_kind("photonic_phase", **entry)
    w = torch.zeros(N_DEVICES, dtype=torch.float64)
    phase_error = -torch.arcsin(kind.read(w, context()))
    rel_std_close(float(phase_error.std()), 0.05)
    assert abs(float(phase_error.mean())) < 5 * 0.05 / math.sqrt(N_DEVICES)  # unbiased


def test_photonic_phase_noise_through_a_linear() -> None:
    # Column 0 holds w_max = 1 (phase 0); the other 99 columns hold w = 0 (phase pi/2).
    weight = torch.zeros(1000, 100, dtype=torch.float64)
    weight[:, 0] = 1.0
    model = noisy_linear(make_profile([photonic_ideal(phase_noise_rad=0.05)]), weight)
    with torch.no_grad():
        read = model(torch.eye(100, dtype=torch.float64)).T  # (out, in): the weights as read
    phase_error = -torch.arcsin(read[:, 1:])
    rel_std_close(float(phase_error.std()), 0.05)  # 99,000 draws


# A Gaussian truncated at +-3 sigma has variance 1 - 6 phi(3) / (2 Phi(3) - 1) = 0.97333
# sigma^2 (std 0.98658 sigma); clipped at +-3 sigma instead, std 0.99749 sigma.
TRUNCATED_3_STD = math.sqrt(1 - 6 * math.exp(-4.5) / math.sqrt(2 * math.pi) / math.erf(3 / math.sqrt(2)))
# 5 relative standard errors of a sample std over N_DEVICES draws: sqrt((kurtosis - 1) / (4 n))
TRUNCATED_3_KURTOSIS = float(stats.truncnorm(-3.0, 3.0).moment(4)) / TRUNCATED_3_STD**4
STD_TOLERANCE = 5 * math.sqrt((TRUNCATED_3_KURTOSIS - 1) / (4 * N_DEVICES))


def photonic_gains(gain_sigma: float, seed: int = 0, n: int = N_DEVICES) -> torch.Tensor:
    """Each shifter's relative gain error, read back from weights at w = 0 (phi = pi/2):
    a relative gain error g gives phi' = pi/2 (1 + g), so g = -arcsin(w') / (pi/2)."""
    fields = {k: v for k, v in photonic_ideal(gain_sigma=gain_sigma).items() if k != "kind"}
    state = WeightState(target=torch.zeros(n, dtype=torch.float64), g_max_us=1.0)
    make_kind("photonic_phase", **fields).program(state, context(seed))
    return -torch.arcsin(state.weights()) / (math.pi / 2)


def test_photonic_gain_variation_is_relative_and_bounded_at_3_sigma() -> None:
    # An absolute phase error would come out pi/2 times smaller.
    gain_sigma = 0.02
    gain = photonic_gains(gain_sigma)
    rel_std_close(float(gain.std()), gain_sigma * TRUNCATED_3_STD, rel=STD_TOLERANCE)
    assert float(gain.abs().max()) <= 3 * gain_sigma + 1e-12
    assert float(gain.abs().max()) > 2.9 * gain_sigma  # the tails are there up to the bound


def test_photonic_gain_variation_is_a_truncated_normal() -> None:
    # Against scipy's truncated normal on [-3, 3]: the shape (Kolmogorov-Smirnov), no
    # mass on the bounds (clipping would pin 0.27% of the shifters there), the variance.
    gain_sigma = 0.02
    z = (photonic_gains(gain_sigma) / gain_sigma).numpy()
    reference = stats.truncnorm(-3.0, 3.0)
    assert stats.kstest(z, reference.cdf).pvalue > 1e-3
    assert int((abs(z) >= 3.0 - 1e-6).sum()) == 0
    assert float(reference.var()) == pytest.approx(0.97333, abs=1e-5)
    # a sample variance's standard error: sqrt((mu4 - var^2) / n)
    se = math.sqrt((float(reference.moment(4)) - float(reference.var()) ** 2) / len(z))
    assert float(z.var()) == pytest.approx(float(reference.var()), abs=5 * se)
    assert abs(float(z.mean())) < 5 * math.sqrt(float(reference.var()) / len(z))


def test_photonic_gain_variation_is_seeded() -> None:
    assert torch.equal(photonic_gains(0.02, seed=4, n=1000), photonic_gains(0.02, seed=4, n=1000))
    assert not torch.equal(photonic_gains(0.02, seed=4, n=1000), photonic_gains(0.02, seed=5, n=1000))


def test_photonic_gain_variation_through_a_linear_is_held_per_chip() -> None:
    gain_sigma = 0.02
    weight = torch.zeros(1000, 100, dtype=torch.float64)
    weight[:, 0] = 1.0
    model = noisy_linear(make_profile([photonic_ideal(gain_sigma=gain_sigma)]), weight)
    eye = torch.eye(100, dtype=torch.float64)
    with torch.no_grad():
        read, again = model(eye).T, model(eye).T
    assert torch.equal(read, again)  # a chip instance's gains are held
    gain = -torch.arcsin(read[:, 1:]) / (math.pi / 2)
    rel_std_close(float(gain.std()), gain_sigma * TRUNCATED_3_STD, rel=2 * STD_TOLERANCE)  # 99,000 draws


def crosstalk_expected(target: torch.Tensor, c: float) -> torch.Tensor:
    """cos(phi_i + c (phi_(i-1) + phi_(i+1))) along each row, edges with one neighbour."""
    phi = torch.arccos(target)
    padded = torch.nn.functional.pad(phi, (1, 1))
    return torch.cos(phi + c * (padded[:, :-2] + padded[:, 2:]))


def test_photonic_thermal_crosstalk_adds_both_neighbours() -> None:
    c = 0.01
    target = torch.rand(16, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    kind = make_kind("photonic_phase", **{k: v for k, v in photonic_ideal(crosstalk=c).items() if k != "kind"})
    state = WeightState(target=target, g_max_us=1.0)
    kind.program(state, context())
    torch.testing.assert_close(state.weights(), crosstalk_expected(target, c), rtol=0, atol=1e-12)
    # noise_scale multiplies c
    state = WeightState(target=target, g_max_us=1.0)
    kind.program(state, context(scale=0.5))
    torch.testing.assert_close(state.weights(), crosstalk_expected(target, c / 2), rtol=0, atol=1e-12)


def test_photonic_thermal_crosstalk_through_a_linear() -> None:
    c = 0.01
    weight = torch.rand(8, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    model = noisy_linear(make_profile([photonic_ideal(crosstalk=c)], mapping={"scale": "per_tensor"}), weight)
    w_max = float(weight.abs().max())
    with torch.no_grad():
        read = model(torch.eye(12, dtype=torch.float64)).T / w_max
    torch.testing.assert_close(read, crosstalk_expected(weight / w_max, c), rtol=0, atol=1e-12)


# -- Per-row ADC bound (adc.per_row, as in sram-cim-8bit) ---------------------------------------
def per_row_adc_without_noise() -> hwprofiles.Profile:
    """The shipped sram-cim-8bit's DAC and tiles with its column noise off, and an 8-bit ADC
    over each column's full scale (a multi-bit charge-domain conversion, not bit-serial)."""
    return (
        hwprofiles.load_profile("sram-cim-8bit")
        .with_noise_scale(0.0)
        .model_copy(update={"adc": hwprofiles.profiles.ADC(bits=8, bound=1.0, per_row=True)})
    )


@pytest.mark.parametrize(
    "fan_in, rows_used, tiles",
    [
        (100, 100, 1),
        (255, 255, 1),
        (300, 150, 2),  # 255-row tiles: split evenly into two tiles of 150 rows
        (600, 200, 3),
    ],
)
def test_per_row_adc_saturates_at_bound_times_rows_in_use(fan_in: int, rows_used: int, tiles: int) -> None:
    # All-ones weights and inputs: each tile's partial sum is rows_used, which an ADC bound of
    # 0.5 per row clips to 0.5 rows_used; the digital sum over tiles gives 0.5 fan_in rounded up.
    profile = per_row_adc_without_noise().model_copy(
        update={"adc": hwprofiles.profiles.ADC(bits=8, bound=0.5, per_row=True)}
    )
    x = torch.ones(2, fan_in, dtype=torch.float64)
    model = noisy_linear(profile, torch.ones(4, fan_in, dtype=torch.float64), calibration=x)
    with torch.no_grad():
        y = model(x)
    assert float(model[0].mvm.input_bound) == pytest.approx(1.0)
    torch.testing.assert_close(y, torch.full_like(y, 0.5 * rows_used * tiles), rtol=0, atol=1e-4)


@pytest.mark.parametrize("fan_in, rows_used", [(100, 100), (300, 150)])
def test_per_row_adc_step_is_bound_times_rows_over_levels(fan_in: int, rows_used: int) -> None:
    # ADC bound 1 per row, 8 signed bits (127 levels a side). Random +-1 weights
    # and inputs in [0, 1] give partial sums of order sqrt(rows), well inside the bound: every
    # output is a multiple of rows_used / 127 (the sum over tiles too), and no coarser step fits.
    profile = per_row_adc_without_noise()
    weight = pm_ones(64, fan_in)
    x = torch.rand(32, fan_in, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x[0] = 1.0  # calibration takes the 99.99th percentile of |x| as the DAC bound: make it 1
    model = noisy_linear(profile, weight, calibration=x)
    with torch.no_grad():
        y = model(x)
    step = rows_used / 127
    k = y / step
    torch.testing.assert_close(k, torch.round(k), rtol=0, atol=1e-3)  # the ADC rounds in float32
    assert (y - x.clamp(-1, 1).mul(127).round().div(127) @ weight.T).abs().max() <= tiles_of(fan_in) * step / 2 + 1e-4
    # the step for one row more or less does not fit these outputs
    for wrong in (rows_used - 1, rows_used + 1):
        k = y / (wrong / 127)
        assert (k - torch.round(k)).abs().max() > 0.1


def tiles_of(fan_in: int) -> int:
    return math.ceil(fan_in / 255)


def test_per_row_false_keeps_the_bound_in_normalised_units() -> None:
    profile = per_row_adc_without_noise().model_copy(
        update={"adc": hwprofiles.profiles.ADC(bits=8, bound=0.5, per_row=False)}
    )
    x = torch.ones(2, 300, dtype=torch.float64)
    model = noisy_linear(profile, torch.ones(4, 300, dtype=torch.float64), calibration=x)
    with torch.no_grad():
        y = model(x)
    torch.testing.assert_close(y, torch.full_like(y, 0.5 * 2), rtol=0, atol=1e-5)  # two tiles of 0.5


# -- PCM 1/f read noise acts on the drifted conductance ----------------------------------------
def test_pcm_read_1f_noise_is_relative_to_the_drifted_conductance() -> None:
    # After a year with nu = 0.1 a device holds g(t) = 0.23 g_target; the 1/f noise is
    # |g(t)| Q_s(x) sqrt(ln((t + t_r)/(2 t_r))) with x = g_target / g_max (NOISE-MODELS 2).
    # Noise relative to g_target would be 1/0.23 = 4.4 times larger; Q_s at the drifted x,
    # 0.23^-0.65 = 2.6 times larger.
    t_s, nu, x = 365 * 86_400.0, 0.1, 0.5
    drift = ((t_s + 20.0) / 20.0) ** -nu
    assert drift < 0.25
    q_s = 0.0088 / x**0.65
    rel_sigma = q_s * math.sqrt(math.log((t_s + 250e-9) / (2 * 250e-9)))
    state = WeightState(target=torch.full((N_DEVICES,), x, dtype=torch.float64), g_max_us=25.0)
    ctx = dict(g_max_us=25.0, t_inference_s=t_s)
    make_kind("pcm_drift", nu_mean=nu, nu_std=0.0, compensation=False).program(state, context(seed=1, **ctx))
    g_t = state.conductances()[0].clone()
    torch.testing.assert_close(g_t, torch.full_like(g_t, x * 25.0 * drift))
    make_kind("pcm_read_1f").program(state, context(seed=2, **ctx))
    g = state.conductances()[0]
    rel_std_close(float(((g - g_t) / g_t).std()), rel_sigma)
    assert torch.equal(state.conductances()[1], torch.zeros_like(g))  # the idle device: |g| = 0, no noise


def test_pcm_read_1f_after_drift_through_a_linear() -> None:
    # Column 0 at x = 1, column 1 at x = 0.5; drift (nu = 0.1, no compensation) then 1/f noise.
    t_s, nu = 365 * 86_400.0, 0.1
    drift = ((t_s + 20.0) / 20.0) ** -nu
    noise = [{"kind": "pcm_drift", "nu_mean": nu, "nu_std": 0.0, "compensation": False}, {"kind": "pcm_read_1f"}]
    weight = torch.tensor([1.0, 0.5], dtype=torch.float64).repeat(60_000, 1)
    model = noisy_linear(make_profile(noise, t_inference_s=t_s), weight)
    with torch.no_grad():
        read = model(torch.eye(2, dtype=torch.float64)).T  # (out, in): normalised weights as programmed
    log_term = math.sqrt(math.log((t_s + 250e-9) / (2 * 250e-9)))
    for column, x in [(0, 1.0), (1, 0.5)]:
        g_t = x * drift
        assert float(read[:, column].mean()) == pytest.approx(g_t, rel=0.01)
        rel_std_close(float(read[:, column].std() / g_t), min(0.0088 / x**0.65, 0.2) * log_term, rel=0.02)
