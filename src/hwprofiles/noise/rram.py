"""Resistive RAM: NeuRRAM relaxation (Wan 2022) and the filamentary HfOx CMO model."""

from __future__ import annotations

import torch

from hwprofiles.entries.rram import NEURRAM_G_MAX_REF_US, NEURRAM_RELAXATION_US, RramCmo, RramRelaxation
from hwprofiles.errors import NoiseConfigError
from hwprofiles.noise.base import NoiseKind, StageContext, WeightState


def neurram_sigma_us(
    x: torch.Tensor, t_s: float, g_max_us: float, g_max_ref_us: float = NEURRAM_G_MAX_REF_US
) -> torch.Tensor:
    """Std of relaxation at time t (one of the published times), in uS at ``g_max_us``.

    The polynomials give uS for g_max = 40 uS; the relaxation is a property of the
    normalised state x, so another g_max scales sigma by g_max / 40.
    """
    coefficients = _coefficients_at(t_s)
    sigma = torch.zeros_like(x)
    for c in coefficients:  # Horner, highest power first
        sigma = sigma * x + c
    return sigma.clamp_min(0.0) * (g_max_us / g_max_ref_us)


def _coefficients_at(t_s: float) -> tuple[float, ...]:
    for t_published, coefficients in NEURRAM_RELAXATION_US.items():
        if abs(t_s - t_published) <= 1e-6 * max(1.0, t_published):
            return coefficients
    raise NoiseConfigError(
        f"rram_relaxation has data only at t_inference_s = 1 (1 s), 86400 (1 day) and 172800 "
        f"(2 days) after programming; {t_s:g} s was asked. Pass one of these times."
    )


class RramRelaxationNoise(NoiseKind[RramRelaxation]):
    """g = max(g_target + N(0, s_t(x)^2), 0) per device, s_t from NeuRRAM's polynomials."""

    stages = frozenset({"program"})

    def check(self, ctx: StageContext) -> None:
        _coefficients_at(ctx.t_inference_s)

    def program(self, state: WeightState, ctx: StageContext) -> None:
        noisy = []
        for g in state.conductances():
            sigma = neurram_sigma_us(g / ctx.g_max_us, ctx.t_inference_s, ctx.g_max_us, self.entry.g_max_ref_us)
            noisy.append((g + ctx.scale * sigma * ctx.randn(g.shape, like=g)).clamp_min(0.0))
        state.set_conductances(*noisy)


class RramCmoNoise(NoiseKind[RramCmo]):
    """g = max(g_target + N(0, ((a + b x) g_max)^2), 0) per device."""

    stages = frozenset({"program"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        noisy = []
        for g in state.conductances():
            x = g / ctx.g_max_us
            sigma = (self.entry.a + self.entry.b * x) * ctx.g_max_us * ctx.scale
            noisy.append((g + sigma * ctx.randn(g.shape, like=g)).clamp_min(0.0))
        state.set_conductances(*noisy)
