"""The seed study's abstract Gaussian models, on outputs in activation units."""

from __future__ import annotations

import torch

from hwprofiles.entries.base import VarianceAware
from hwprofiles.entries.gaussian import GaussianAdditive, GaussianCombined, GaussianMultiplicative
from hwprofiles.noise.base import NoiseKind, StageContext, scale_by_noise  # noqa: F401  (re-exported)


def sample_sigma(
    sigma: float, per_sample: VarianceAware | None, y: torch.Tensor, ctx: StageContext
) -> torch.Tensor | float:
    """The noise std: ``sigma * scale``, or per sample ``sigma (alpha + theta |z|) scale``
    in training mode when the entry asks for variance-aware noise."""
    if per_sample is None or not ctx.training or y.dim() == 0:
        return sigma * ctx.scale
    z = ctx.randn((y.shape[0],) + (1,) * (y.dim() - 1), like=y)
    return sigma * (per_sample.alpha + per_sample.theta * z.abs()) * ctx.scale


class GaussianAdditiveNoise(NoiseKind[GaussianAdditive]):
    """y' = y + N(0, sigma^2)."""

    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        sigma = sample_sigma(self.entry.sigma, self.entry.per_sample, y, ctx)
        return ctx.add_noise(y, sigma)


class GaussianMultiplicativeNoise(NoiseKind[GaussianMultiplicative]):
    """y' = y * N(1, sigma^2)."""

    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        sigma = sample_sigma(self.entry.sigma, self.entry.per_sample, y, ctx)
        return ctx.scale_noise(y, sigma)


class GaussianCombinedNoise(NoiseKind[GaussianCombined]):
    """y' = y * N(1, (A (1 - r))^2) + N(0, (A r)^2)."""

    stages = frozenset({"outputs"})

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        amplitude = sample_sigma(self.entry.amplitude, self.entry.per_sample, y, ctx)
        r = self.entry.ratio
        return ctx.add_noise(ctx.scale_noise(y, amplitude * (1.0 - r)), amplitude * r)
