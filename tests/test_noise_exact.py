"""Every built-in noise kind reproduces its formula exactly, draw for draw.

``test_noise_stats.py`` checks the statistics of each kind over large samples, which
catches a wrong sigma by a few percent. Here each stage is run with a seeded
generator and compared, to float64 rounding, with the formula of NOISE-MODELS.md
evaluated on the standard normal (or uniform) numbers that an identically seeded
generator gives, taken in the order the kind draws them (one chip seed gives one
chip, so that order is part of what users rely on). A constant off by 1% fails here.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from helpers import make_profile
from scipy import stats

import hwprofiles
from hwprofiles.noise import rng
from hwprofiles.noise.base import StageContext, WeightState

pytestmark = pytest.mark.usefixtures("one_thread")

SEED = 123
F64 = torch.float64


def make_kind(kind: str, **fields: Any):
    model = hwprofiles.get_noise_model(kind)
    return model.implementation(model.entry_model(**fields), make_profile([]))


def context(scale: float = 1.0, training: bool = False, **fields: Any) -> StageContext:
    return StageContext(generator=torch.Generator().manual_seed(SEED), scale=scale, training=training, **fields)


class Draws:
    """The numbers a generator seeded like :func:`context` gives, in the order asked."""

    def __init__(self) -> None:
        self.g = torch.Generator().manual_seed(SEED)

    def randn(self, *shape: int) -> torch.Tensor:
        return rng.randn(shape, self.g, device=torch.device("cpu"), dtype=F64)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.g, dtype=F64)


def signal(n: int = 64) -> torch.Tensor:
    return torch.linspace(-3.0, 5.0, n, dtype=F64)


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)


# -- the seed study's Gaussian models -------------------------------------------------------
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_gaussian_additive(scale: float) -> None:
    y = signal()
    out = make_kind("gaussian_additive", sigma=0.3).outputs(y, context(scale))
    close(out, y + 0.3 * scale * Draws().randn(64))


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_gaussian_multiplicative(scale: float) -> None:
    y = signal()
    out = make_kind("gaussian_multiplicative", sigma=0.2).outputs(y, context(scale))
    close(out, y * (1 + 0.2 * scale * Draws().randn(64)))


def test_gaussian_combined() -> None:
    y = signal()
    a, r, scale = 0.4, 0.25, 0.5
    out = make_kind("gaussian_combined", amplitude=a, ratio=r).outputs(y, context(scale))
    d = Draws()
    z_mult, z_add = d.randn(64), d.randn(64)
    close(out, y * (1 + a * scale * (1 - r) * z_mult) + a * scale * r * z_add)


@pytest.mark.parametrize(
    "kind, field",
    [
        ("gaussian_additive", "sigma"),
        ("gaussian_multiplicative", "sigma"),
        ("gaussian_combined", "amplitude"),
    ],
)
def test_variance_aware_sigma_per_sample(kind: str, field: str) -> None:
    # In training each sample draws sigma_s = sigma (alpha + theta |z_s|) first; evaluation uses sigma.
    sigma, alpha, theta, scale = 0.3, 0.45, 0.66, 0.5
    fields = {field: sigma, "per_sample": {"alpha": alpha, "theta": theta}}
    if kind == "gaussian_combined":
        fields["ratio"] = 0.25
    impl = make_kind(kind, **fields)
    y = signal(60).reshape(4, 3, 5)
    d = Draws()
    s = sigma * (alpha + theta * d.randn(4, 1, 1).abs()) * scale
    if kind == "gaussian_additive":
        expected = y + s * d.randn(4, 3, 5)
    elif kind == "gaussian_multiplicative":
        expected = y * (1 + s * d.randn(4, 3, 5))
    else:
        z_mult = d.randn(4, 3, 5)
        expected = y * (1 + s * 0.75 * z_mult) + s * 0.25 * d.randn(4, 3, 5)
    close(impl.outputs(y, context(scale, training=True)), expected)
    # evaluation: the nominal sigma, no per-sample draw
    d = Draws()
    out = impl.outputs(y, context(scale, training=False))
    if kind == "gaussian_additive":
        close(out, y + sigma * scale * d.randn(4, 3, 5))
    # a 0-d output has no samples to draw for: the nominal sigma
    y0 = torch.tensor(2.0, dtype=F64)
    if kind == "gaussian_additive":
        close(impl.outputs(y0, context(scale, training=True)), y0 + sigma * scale * Draws().randn())


# -- peripherals ------------------------------------------------------------------------------
@pytest.mark.parametrize("relative_to, expected_sigma", [("out_bound", 0.04 * 0.5 * 10.0), ("absolute", 0.04 * 0.5)])
def test_output_noise(relative_to: str, expected_sigma: float) -> None:
    y = signal()
    out = make_kind("output_noise", sigma=0.04, relative_to=relative_to).tile_outputs(y, context(0.5, out_bound=10.0))
    close(out, y + expected_sigma * Draws().randn(64))


def test_weight_read_noise() -> None:
    w = signal() / 5
    close(make_kind("weight_read_noise", sigma=0.02).read(w, context(0.5)), w + 0.01 * Draws().randn(64))


@pytest.mark.parametrize("scale", [1.0, 2.0, 20.0])
def test_stuck_at(scale: float) -> None:
    p0, p1, g_max = 0.02, 0.03, 40.0
    target = signal(400) / 5
    state = WeightState(target=target, g_max_us=g_max)
    pair = [g.clone() for g in state.conductances()]
    make_kind("stuck_at", p_sa0=p0, p_sa1=p1).program(state, context(scale, g_max_us=g_max))
    q0 = min(p0 * scale, 1.0)
    q1 = min(p1 * scale, 1.0 - q0)
    d = Draws()
    for g, before in zip(state.conductances(), pair):
        u = d.rand(400)
        expected = torch.where(u < q0, 0.0, torch.where(u < q0 + q1, g_max, before))
        close(g, expected)


def test_stuck_at_probabilities_are_capped() -> None:
    # scale 100: p_sa0 = 0.6 -> 0.6, p_sa1 = 0.5 -> capped at 1 - 0.6 = 0.4; every device stuck
    state = WeightState(target=signal(400) / 5, g_max_us=10.0)
    make_kind("stuck_at", p_sa0=0.006, p_sa1=0.005).program(state, context(100.0, g_max_us=10.0))
    for g in state.conductances():
        assert ((g == 0) | (g == 10.0)).all()
        assert 0.5 < float((g == 0).double().mean()) < 0.7


# -- SRAM ---------------------------------------------------------------------------------------
def test_sram_column_noise() -> None:
    y = signal()
    out = make_kind("sram_column_noise", sigma_percent_fs=0.39).tile_outputs(y, context(0.5, tile_rows=200))
    close(out, y + 0.0039 * 200 * 0.5 * Draws().randn(64))


# -- photonic -------------------------------------------------------------------------------------
def test_photodetector_shot_and_thermal() -> None:
    y = signal()
    bound, photons, thermal, scale = 10.0, 1e4, 0.005, 0.5
    out = make_kind("photodetector", photons_full_scale=photons, thermal_sigma=thermal).tile_outputs(
        y, context(scale, out_bound=bound)
    )
    std = torch.sqrt(y.abs() * bound / photons + (thermal * bound) ** 2) * scale
    close(out, y + std * Draws().randn(64))


def test_photodetector_without_shot_noise() -> None:
    y = signal()
    out = make_kind("photodetector", photons_full_scale=None, thermal_sigma=0.01).tile_outputs(
        y, context(out_bound=8.0)
    )
    close(out, y + 0.08 * Draws().randn(64))


def photonic_phase_expected(
    target: torch.Tensor, bits: int | None, v_pi: float, gain_sigma: float, crosstalk: float, scale: float
) -> torch.Tensor:
    phi = torch.arccos(target.clamp(-1, 1))
    if bits is not None:
        levels = 2**bits - 1
        v = v_pi * torch.sqrt(phi / math.pi)  # phi = pi (V / V_pi)^2
        v = torch.round(v / v_pi * levels) / levels * v_pi
        phi = math.pi * (v / v_pi) ** 2
    # a normal truncated at 3 sigma, drawn by inverse CDF from one uniform per shifter
    low = stats.norm.cdf(-3.0)
    u = Draws().rand(*phi.shape).numpy()
    gain = torch.from_numpy(stats.norm.ppf(low + (1 - 2 * low) * u)) * gain_sigma * scale
    phi = phi * (1 + gain)
    rows = phi.reshape(phi.shape[0], -1)
    padded = torch.nn.functional.pad(rows, (1, 1))
    return torch.cos(rows + crosstalk * scale * (padded[:, :-2] + padded[:, 2:])).reshape(phi.shape)


@pytest.mark.parametrize("bits, scale", [(None, 1.0), (4, 1.0), (8, 0.5)])
def test_photonic_phase_program(bits: int | None, scale: float) -> None:
    fields = dict(bits=bits, v_pi=4.36, gain_sigma=0.05, crosstalk=0.01)
    target = torch.rand(6, 2, 5, generator=torch.Generator().manual_seed(1), dtype=F64) * 2 - 1
    target[0, 0, :2] = torch.tensor([-1.05, 1.05])  # beyond +-1: set as -1 and 1
    state = WeightState(target=target, g_max_us=1.0)
    make_kind("photonic_phase", **fields).program(state, context(scale))
    close(state.weights(), photonic_phase_expected(target, scale=scale, **fields))


def test_photonic_phase_program_at_scale_zero_is_the_ideal_device() -> None:
    target = signal() / 5
    state = WeightState(target=target, g_max_us=1.0)
    make_kind("photonic_phase", bits=2).program(state, context(0.0))
    assert torch.equal(state.weights(), target)


def test_photonic_phase_read() -> None:
    w = signal() / 5.5
    out = make_kind("photonic_phase", phase_noise_rad=0.05).read(w, context(0.5))
    close(out, torch.cos(torch.arccos(w) + 0.025 * Draws().randn(64)))
    # weights pushed beyond +-1 by an earlier read stage are read as +-1 (phases pi and 0)
    beyond = torch.tensor([1.2, -1.3], dtype=F64)
    d = Draws().randn(2)
    close(
        make_kind("photonic_phase", phase_noise_rad=0.05).read(beyond, context()),
        torch.cos(torch.tensor([0.0, math.pi], dtype=F64) + 0.05 * d),
    )
    # no phase noise: the weights are returned as they are
    assert make_kind("photonic_phase", phase_noise_rad=0.0).read(w, context()) is w


# -- PCM ------------------------------------------------------------------------------------------
def pair_target(n: int = 200) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, n, dtype=F64)


def device_pair(target: torch.Tensor, g_max: float) -> tuple[torch.Tensor, torch.Tensor]:
    g = target.abs() * g_max
    return torch.where(target > 0, g, 0.0), torch.where(target < 0, g, 0.0)


@pytest.mark.parametrize("g_max, scale", [(25.0, 1.0), (50.0, 0.5)])
def test_pcm_programming(g_max: float, scale: float) -> None:
    target = pair_target()
    state = WeightState(target=target, g_max_us=g_max)
    make_kind("pcm_programming").program(state, context(scale, g_max_us=g_max))
    d = Draws()
    for g, g0 in zip(state.conductances(), device_pair(target, g_max)):
        x = g0 / g_max
        s = (0.26348 + 1.9650 * x - 1.1731 * x**2).clamp_min(0) * g_max / 25.0
        close(g, (g0 + scale * s * d.randn(200)).clamp_min(0))


def test_pcm_programming_polynomial_is_clamped_at_zero() -> None:
    # c = (-1, 2, 0): s(x) = max(2x - 1, 0): no noise below x = 0.5
    target = pair_target()
    state = WeightState(target=target, g_max_us=25.0)
    make_kind("pcm_programming", coefficients_us=(-1.0, 2.0, 0.0)).program(state, context(g_max_us=25.0))
    d = Draws()
    for g, g0 in zip(state.conductances(), device_pair(target, 25.0)):
        s = (2 * g0 / 25.0 - 1).clamp_min(0)
        close(g, (g0 + s * d.randn(200)).clamp_min(0))


def nu_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    log_x = torch.log(x.clamp_min(1e-6))
    return (-0.0155 * log_x + 0.0244).clamp(0.049, 0.1), (-0.0125 * log_x - 0.0059).clamp(0.008, 0.045)


@pytest.mark.parametrize("t_s, scale", [(3600.0, 1.0), (86_400.0, 0.5)])
def test_pcm_drift_without_compensation(t_s: float, scale: float) -> None:
    target = pair_target()
    state = WeightState(target=target, g_max_us=25.0)
    make_kind("pcm_drift", t0_s=20.0, compensation=False).program(
        state, context(scale, g_max_us=25.0, t_inference_s=t_s)
    )
    d = Draws()
    for g, g0 in zip(state.conductances(), device_pair(target, 25.0)):
        mu, sd = nu_stats(g0 / 25.0)
        nu = (scale * (mu + sd * d.randn(200))).abs()
        close(g, g0 * ((t_s + 20.0) / 20.0) ** (-nu))
    assert state.out_gain == 1.0


def test_pcm_drift_exponent_statistics_follow_the_published_clips() -> None:
    # mu_nu and s_nu at states that hit each clip and the linear part between them
    from hwprofiles.noise.pcm import drift_nu_stats

    x = torch.tensor([0.0, 1e-7, 1e-3, 0.05, 0.3, 0.7, 1.0], dtype=F64)
    mu, sd = drift_nu_stats(x)
    mu_ref, sd_ref = nu_stats(x)
    close(mu, mu_ref)
    close(sd, sd_ref)
    assert float(mu[0]) == 0.1 and float(mu[-1]) == pytest.approx(0.049)  # both clips reached
    assert float(sd[0]) == 0.045 and float(sd[-1]) == pytest.approx(0.008)


def test_pcm_drift_with_fixed_nu_and_compensation() -> None:
    t_s, t0 = 86_400.0, 10.0
    target = torch.tensor([[0.9, -0.4, 0.1], [-1.0, 0.2, 0.0]], dtype=F64)
    state = WeightState(target=target, g_max_us=25.0)
    make_kind("pcm_drift", t0_s=t0, nu_mean=0.06, nu_std=0.02).program(state, context(g_max_us=25.0, t_inference_s=t_s))
    d = Draws()
    drifted = []
    for g0 in device_pair(target, 25.0):
        nu = (0.06 + 0.02 * d.randn(2, 3)).abs()
        drifted.append(g0 * ((t_s + t0) / t0) ** (-nu))
    w = (drifted[0] - drifted[1]) / 25.0
    close(state.weights(), w)
    # the reference read: the summed conductance of both devices, after programming and at t
    summed = sum(g.sum() for g in device_pair(target, 25.0))
    close(torch.as_tensor(state.out_gain), summed / (drifted[0].sum() + drifted[1].sum()))


def test_pcm_drift_compensation_of_rows_summing_to_zero() -> None:
    # +a/-a alternating along every row: each row sums to exactly zero, an all-ones read
    # gives 0 before drift. The summed conductance is 25 a uS per weight all the same.
    t_s, t0, a = 86_400.0, 20.0, 0.5
    target = torch.full((4, 6), a, dtype=F64)
    target[:, 1::2] = -a
    state = WeightState(target=target, g_max_us=25.0)
    make_kind("pcm_drift", t0_s=t0, nu_mean=0.05, nu_std=0.01).program(state, context(g_max_us=25.0, t_inference_s=t_s))
    d = Draws()
    factors = [((t_s + t0) / t0) ** (-(0.05 + 0.01 * d.randn(4, 6)).abs()) for _ in range(2)]
    active = torch.where(target > 0, factors[0], factors[1])  # the idle devices sit at 0 uS
    close(torch.as_tensor(state.out_gain), 24 * a * 25.0 / (a * 25.0 * active).sum())
    assert 1.0 < float(state.out_gain) < ((t_s + t0) / t0) ** 0.08  # near (t/t0)^0.05 = 1.5


def test_pcm_drift_does_nothing_at_time_zero_or_scale_zero() -> None:
    for ctx in (context(t_inference_s=0.0), context(0.0, t_inference_s=3600.0)):
        state = WeightState(target=pair_target(), g_max_us=25.0)
        make_kind("pcm_drift").program(state, ctx)
        assert torch.equal(state.weights(), pair_target()) and state.out_gain == 1.0


def test_pcm_drift_compensation_of_an_all_zero_array_stays_finite() -> None:
    state = WeightState(target=torch.zeros(3, 4, dtype=F64), g_max_us=25.0)
    make_kind("pcm_drift").program(state, context(t_inference_s=3600.0))
    assert float(state.out_gain) == 1.0


@pytest.mark.parametrize("t_s, scale", [(3600.0, 1.0), (1e-6, 1.0), (86_400.0, 0.5)])
def test_pcm_read_1f(t_s: float, scale: float) -> None:
    target = pair_target()
    state = WeightState(target=target, g_max_us=25.0)
    make_kind("pcm_read_1f").program(state, context(scale, g_max_us=25.0, t_inference_s=t_s))
    d = Draws()
    root = math.sqrt(math.log((t_s + 250e-9) / (2 * 250e-9)))
    for g, g0 in zip(state.conductances(), device_pair(target, 25.0)):
        q_s = (0.0088 / (g0 / 25.0).clamp_min(1e-6) ** 0.65).clamp_max(0.2)
        close(g, (g0 + g0.abs() * q_s * root * scale * d.randn(200)).clamp_min(0))


def test_pcm_read_1f_custom_coefficients() -> None:
    target = pair_target()
    fields = dict(q_coefficient=0.02, q_exponent=0.5, q_max=0.1, t_read_s=1e-6)
    state = WeightState(target=target, g_max_us=25.0)
    make_kind("pcm_read_1f", **fields).program(state, context(g_max_us=25.0, t_inference_s=100.0))
    d = Draws()
    root = math.sqrt(math.log((100.0 + 1e-6) / 2e-6))
    for g, g0 in zip(state.conductances(), device_pair(target, 25.0)):
        q_s = (0.02 / (g0 / 25.0).clamp_min(1e-6) ** 0.5).clamp_max(0.1)
        close(g, (g0 + g0 * q_s * root * d.randn(200)).clamp_min(0))


@pytest.mark.parametrize("t_s", [0.0, 250e-9, 500e-9])
def test_pcm_read_1f_before_the_read_time_adds_nothing(t_s: float) -> None:
    # ln((t + t_r) / (2 t_r)) <= 0 for t <= t_r: no 1/f noise has accumulated
    state = WeightState(target=pair_target(), g_max_us=25.0)
    make_kind("pcm_read_1f").program(state, context(t_inference_s=t_s))
    if t_s <= 250e-9:
        assert torch.equal(state.weights(), pair_target())
    else:
        assert not torch.equal(state.weights(), pair_target())


# -- RRAM -----------------------------------------------------------------------------------------
NEURRAM = {
    1.0: (-16.815, 45.393, -43.853, 16.030, 0.348),
    86_400.0: (-16.458, 47.095, -50.773, 22.086, 0.701),
    172_800.0: (-11.934, 37.062, -43.507, 20.274, 0.782),
}


@pytest.mark.parametrize("t_s", sorted(NEURRAM))
@pytest.mark.parametrize("g_max, scale", [(40.0, 1.0), (80.0, 0.5)])
def test_rram_relaxation(t_s: float, g_max: float, scale: float) -> None:
    target = pair_target()
    state = WeightState(target=target, g_max_us=g_max)
    kind = make_kind("rram_relaxation")
    ctx = context(scale, g_max_us=g_max, t_inference_s=t_s)
    kind.check(ctx)
    kind.program(state, ctx)
    d = Draws()
    c4, c3, c2, c1, c0 = NEURRAM[t_s]
    for g, g0 in zip(state.conductances(), device_pair(target, g_max)):
        x = g0 / g_max
        s = (c4 * x**4 + c3 * x**3 + c2 * x**2 + c1 * x + c0).clamp_min(0) * g_max / 40.0
        close(g, (g0 + scale * s * d.randn(200)).clamp_min(0))


def test_rram_relaxation_accepts_published_times_to_a_millionth() -> None:
    from hwprofiles.errors import NoiseConfigError

    kind = make_kind("rram_relaxation")
    kind.check(context(t_inference_s=86_400.0 * (1 + 0.9e-6)))
    kind.check(context(t_inference_s=1.0 + 0.9e-6))
    kind.check(context(t_inference_s=1.0 - 0.9e-6))
    with pytest.raises(NoiseConfigError):
        kind.check(context(t_inference_s=86_400.0 * (1 + 1.5e-6)))
    with pytest.raises(NoiseConfigError):
        kind.check(context(t_inference_s=1.0 + 1.5e-6))


def test_neurram_sigma_us_at_its_reference_g_max() -> None:
    from hwprofiles.noise.rram import neurram_sigma_us

    x = torch.linspace(0, 1, 11, dtype=F64)
    c4, c3, c2, c1, c0 = NEURRAM[86_400.0]
    reference = (c4 * x**4 + c3 * x**3 + c2 * x**2 + c1 * x + c0).clamp_min(0)
    close(neurram_sigma_us(x, 86_400.0, 40.0), reference)  # the published polynomial, in uS at 40 uS
    close(neurram_sigma_us(x, 86_400.0, 40.0, 20.0), 2 * reference)


def test_rram_relaxation_with_another_reference_g_max() -> None:
    # polynomials fitted at g_max_ref = 20 uS, used at 40 uS: sigma doubles
    target = pair_target()
    state = WeightState(target=target, g_max_us=40.0)
    make_kind("rram_relaxation", g_max_ref_us=20.0).program(state, context(g_max_us=40.0, t_inference_s=1.0))
    d = Draws()
    c4, c3, c2, c1, c0 = NEURRAM[1.0]
    for g, g0 in zip(state.conductances(), device_pair(target, 40.0)):
        x = g0 / 40.0
        s = (c4 * x**4 + c3 * x**3 + c2 * x**2 + c1 * x + c0).clamp_min(0) * 2.0
        close(g, (g0 + s * d.randn(200)).clamp_min(0))


@pytest.mark.parametrize("g_max, scale", [(88.2, 1.0), (40.0, 0.5)])
def test_rram_cmo(g_max: float, scale: float) -> None:
    a, b = 0.0113 / 88.2, 0.0112
    target = pair_target()
    state = WeightState(target=target, g_max_us=g_max)
    make_kind("rram_cmo").program(state, context(scale, g_max_us=g_max))
    d = Draws()
    for g, g0 in zip(state.conductances(), device_pair(target, g_max)):
        s = (a + b * g0 / g_max) * g_max * scale
        close(g, (g0 + s * d.randn(200)).clamp_min(0))


def test_pcm_drift_after_programming_noise_uses_the_target_state() -> None:
    # Programming noise lifts the idle device of each pair above 0 uS; its drift exponent
    # still follows the state it was programmed to (x = 0: mu_nu = 0.1, s_nu = 0.045).
    t_s = 86_400.0
    target = pair_target()
    state = WeightState(target=target, g_max_us=25.0)
    make_kind("pcm_programming").program(state, context(g_max_us=25.0))
    programmed = [g.clone() for g in state.conductances()]
    assert float(programmed[1][-1]) > 0 or float(programmed[0][0]) > 0  # an idle device drawn above 0
    make_kind("pcm_drift", compensation=False).program(state, context(g_max_us=25.0, t_inference_s=t_s))
    d = Draws()
    for g, g_prog, g0 in zip(state.conductances(), programmed, device_pair(target, 25.0)):
        mu, sd = nu_stats(g0 / 25.0)
        nu = (mu + sd * d.randn(200)).abs()
        close(g, g_prog * ((t_s + 20.0) / 20.0) ** (-nu))


@pytest.mark.parametrize("kind, fields", [("weight_read_noise", {"sigma": 0.02}), ("pcm_drift", {})])
def test_repr_names_the_kind_and_its_entry(kind: str, fields: dict[str, Any]) -> None:
    text = repr(make_kind(kind, **fields))
    assert text.startswith(type(make_kind(kind, **fields)).__name__ + "(") and f"kind='{kind}'" in text
