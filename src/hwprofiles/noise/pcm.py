"""Phase-change memory (Nandakumar 2019, Joshi 2020; as in IBM's analog kit's PCM-like model)."""

from __future__ import annotations

import math

import torch

from hwprofiles.entries.pcm import PcmDrift, PcmProgramming, PcmRead1f
from hwprofiles.noise.base import NoiseKind, StageContext, WeightState

_X_MIN = 1e-6  # x enters ln x and x^-0.65; a device at 0 uS uses this floor


def programming_sigma_us(x: torch.Tensor, coefficients: tuple[float, float, float], g_scale: float) -> torch.Tensor:
    """s(x) = max(c0 + c1 x + c2 x^2, 0) uS, scaled by g_max / g_max_ref."""
    c0, c1, c2 = coefficients
    return (c0 + c1 * x + c2 * x * x).clamp_min(0.0) * g_scale


def drift_nu_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mu_nu(x) and s_nu(x) of the drift exponent (Joshi 2020)."""
    log_x = torch.log(x.clamp_min(_X_MIN))
    mu = (-0.0155 * log_x + 0.0244).clamp(0.049, 0.1)
    sd = (-0.0125 * log_x - 0.0059).clamp(0.008, 0.045)
    return mu, sd


class PcmProgrammingNoise(NoiseKind[PcmProgramming]):
    """g_prog = max(g_target + N(0, s(x)^2), 0) on each device of the pair."""

    stages = frozenset({"program"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        g_scale = ctx.g_max_us / self.entry.g_max_ref_us
        noisy = []
        for g in state.conductances():
            sigma = programming_sigma_us(g / ctx.g_max_us, self.entry.coefficients_us, g_scale)
            noisy.append((g + ctx.scale * sigma * ctx.randn(g.shape, like=g)).clamp_min(0.0))
        state.set_conductances(*noisy)


def drift_factor(t_s: float, t0_s: float, nu: torch.Tensor) -> torch.Tensor:
    """((t + t0) / t0)^-nu."""
    return torch.exp(-nu * math.log((t_s + t0_s) / t0_s))


class PcmDriftNoise(NoiseKind[PcmDrift]):
    """g(t) = g_prog ((t + t0)/t0)^-nu with nu ~ |N(mu_nu(x), s_nu(x)^2)| per device.

    With ``compensation`` (global drift compensation) the outputs are rescaled by
    ``sum(g+ + g-) before drift / sum(g+ + g-) after``: a reference read of the summed
    conductance of both devices of every weight, right after programming and at time t.
    Both devices of a pair drift alike, and a sum of conductances is positive by
    construction, so the reference cannot cancel: a layer whose rows sum to about zero
    gets the same gain, about ((t + t0)/t0)^mean(nu), as any other.

    IBM's aihwkit (``GlobalDriftCompensation``) reads the tile through its forward path
    instead, with one-hot inputs (an all-ones vector before version 0.7), and takes
    the mean absolute output: the mean |g+ - g-|, periphery noise included, or, with
    the all-ones vector, the mean |row sum|, which collapses to about zero, and the
    gain blows up or vanishes, on a layer whose rows sum to zero. The summed
    conductance is a read of the same drift that needs no signed quantity, includes
    the idle device of each pair (it drifts too) and is taken noise-free.

    ``noise_scale`` multiplies mu_nu and s_nu.
    """

    stages = frozenset({"program"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        if ctx.t_inference_s <= 0 or ctx.scale == 0:
            return
        before = _summed_conductance(state.conductances())
        drifted = []
        for g, g_target in zip(state.conductances(), state.target_conductances()):
            x = g_target / ctx.g_max_us
            mu, sd = drift_nu_stats(x)
            if self.entry.nu_mean is not None:
                mu = torch.full_like(x, self.entry.nu_mean)
            if self.entry.nu_std is not None:
                sd = torch.full_like(x, self.entry.nu_std)
            nu = (ctx.scale * (mu + sd * ctx.randn(x.shape, like=x))).abs()
            drifted.append(g * drift_factor(ctx.t_inference_s, self.entry.t0_s, nu))
        state.set_conductances(*drifted)
        if self.entry.compensation:
            after = _summed_conductance(state.conductances())
            state.out_gain = state.out_gain * before / after


def _summed_conductance(pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    # The reference read: the total conductance of both devices of every weight, in uS.
    # Positive by construction; the floor keeps an empty (all 0 uS) array at gain 1.
    g_pos, g_neg = pair
    return (g_pos.sum() + g_neg.sum()).clamp_min(1e-12)


class PcmRead1fNoise(NoiseKind[PcmRead1f]):
    """Accumulated 1/f read noise at t: g += |g| Q_s(x) sqrt(ln((t + t_r)/(2 t_r))) N(0, 1), g >= 0."""

    stages = frozenset({"program"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        e = self.entry
        log_term = math.log((ctx.t_inference_s + e.t_read_s) / (2 * e.t_read_s))
        if log_term <= 0 or ctx.scale == 0:
            return  # before t_r no 1/f noise has accumulated
        noisy = []
        for g, g_target in zip(state.conductances(), state.target_conductances()):
            x = (g_target / ctx.g_max_us).clamp_min(_X_MIN)
            q_s = (e.q_coefficient / x.pow(e.q_exponent)).clamp_max(e.q_max)
            sigma = g.abs() * q_s * math.sqrt(log_term) * ctx.scale
            noisy.append((g + sigma * ctx.randn(g.shape, like=g)).clamp_min(0.0))
        state.set_conductances(*noisy)
