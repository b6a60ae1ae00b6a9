"""What the FeFET kinds do to tensors (the formulas are on the entry models).

Both act when a chip instance is programmed (the ``program`` stage), on the
conductance pair of each weight, and draw only through the stage context, so one
seed gives one chip.
"""

from __future__ import annotations

import math

import torch

from hwprofiles.noise import NoiseKind, StageContext, WeightState
from hwprofiles_fefet.entries import FefetMultilevel, FefetRetention


def multilevel_state(x: torch.Tensor, bits_per_cell: int) -> torch.Tensor:
    """The polarisation state p a device is written to: the nearest of 2^bits levels in [0, 1]."""
    top = 2**bits_per_cell - 1
    return torch.round(x.clamp(0.0, 1.0) * top) / top


def state_sigma(p: torch.Tensor, n_domains: float, sigma_edge: float) -> torch.Tensor:
    """sigma(p) = sqrt(sigma_edge^2 + p (1 - p) / n_domains), as a fraction of g_max."""
    return torch.sqrt(sigma_edge**2 + p * (1.0 - p) / n_domains)


def retention_decades(t_s: float, t0_s: float) -> float:
    """log10(1 + t / t0): the decades of time over which retention loss accumulates."""
    return math.log10(1.0 + t_s / t0_s)


class FefetMultilevelNoise(NoiseKind[FefetMultilevel]):
    """g = max(p + sigma(p) z, 0) g_max per device, p the nearest of 2^bits states."""

    stages = frozenset({"program"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        if ctx.scale == 0:
            return  # an ideal device: neither levels nor variation
        e = self.entry
        written = []
        for g in state.conductances():
            p = multilevel_state(g / ctx.g_max_us, e.bits_per_cell)
            sigma = state_sigma(p, e.n_domains, e.sigma_edge) * ctx.scale
            written.append(((p + sigma * ctx.randn(p.shape, like=p)) * ctx.g_max_us).clamp_min(0.0))
        state.set_conductances(*written)


class FefetRetentionNoise(NoiseKind[FefetRetention]):
    """g(t) = g_mid + (g - g_mid)(1 - r), r = min(k log10(1 + t/t0), 1), k ~ |N(rate, rate_std^2)| per device."""

    stages = frozenset({"program"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        e = self.entry
        decades = retention_decades(ctx.t_inference_s, e.t0_s)
        if ctx.scale == 0 or decades <= 0:
            return
        before = state.weights()
        g_mid = e.middle * ctx.g_max_us
        relaxed = []
        for g in state.conductances():
            rate = (ctx.scale * (e.rate_per_decade + e.rate_std * ctx.randn(g.shape, like=g))).abs()
            loss = (rate * decades).clamp(max=1.0)
            relaxed.append(g_mid + (g - g_mid) * (1.0 - loss))
        state.set_conductances(*relaxed)
        if e.compensation:
            state.out_gain = state.out_gain * _reference_read(before) / _reference_read(state.weights())


def _reference_read(w: torch.Tensor) -> torch.Tensor:
    # One read of the array with an all-ones input: the mean absolute output.
    return w.reshape(w.shape[0], -1).sum(dim=1).abs().mean().clamp_min(1e-12)
