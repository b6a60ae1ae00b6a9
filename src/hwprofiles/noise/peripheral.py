"""Noise of the array periphery and weight reads, shared across technologies."""

from __future__ import annotations

import torch

from hwprofiles.entries.peripheral import OutputNoise, StuckAt, WeightReadNoise
from hwprofiles.noise.base import NoiseKind, StageContext, WeightState


class OutputNoiseKind(NoiseKind[OutputNoise]):
    """Additive Gaussian noise on each tile's partial sums, before the ADC."""

    stages = frozenset({"tile_outputs"})

    def tile_outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        sigma = self.entry.sigma * ctx.scale
        if self.entry.relative_to == "out_bound":
            sigma *= ctx.out_bound
        return ctx.add_noise(y, sigma)


class WeightReadNoiseKind(NoiseKind[WeightReadNoise]):
    """w' = w + N(0, sigma^2) on normalised weights (sigma a fraction of w_max), every read."""

    stages = frozenset({"read"})

    def read(self, w: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        return ctx.add_noise(w, self.entry.sigma * ctx.scale)


class StuckAtKind(NoiseKind[StuckAt]):
    """Devices stuck at g_min (0 uS) or g_max, chosen once per chip instance.

    ``noise_scale`` multiplies both probabilities (capped at 1).
    """

    stages = frozenset({"program"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        p0 = min(self.entry.p_sa0 * ctx.scale, 1.0)
        p1 = min(self.entry.p_sa1 * ctx.scale, 1.0 - p0)
        stuck = []
        for g in state.conductances():
            u = ctx.rand(g.shape, like=g)
            g = torch.where(u < p0, torch.zeros_like(g), g)
            g = torch.where((u >= p0) & (u < p0 + p1), torch.full_like(g, state.g_max_us), g)
            stuck.append(g)
        state.set_conductances(*stuck)
