"""Photonic meshes: phase-encoded weights, and photodetection noise."""

from __future__ import annotations

import math

import torch

from hwprofiles.entries.photonic import Photodetector, PhotonicPhase
from hwprofiles.noise.base import NoiseKind, StageContext, WeightState, add_scaled


def quantized_phase(w: torch.Tensor, bits: int | None, v_pi: float) -> torch.Tensor:
    """phi = arccos(w) set by a b-bit DAC on the shifter voltage (phi = gamma V^2, phi(V_pi) = pi)."""
    phi = torch.arccos(w.clamp(-1.0, 1.0))
    if bits is None:
        return phi
    levels = 2**bits - 1
    voltage = v_pi * torch.sqrt(phi / math.pi)
    voltage = torch.round(voltage / v_pi * levels) / levels * v_pi
    return math.pi * (voltage / v_pi) ** 2


GAIN_TRUNCATION = 3.0  # gamma's relative error: a normal truncated (not clipped) at 3 sigma


class PhotonicPhaseNoise(NoiseKind[PhotonicPhase]):
    """Weights w = cos(phi): DAC-quantised phases, per-shifter gain variation and thermal
    crosstalk held per chip instance; phase noise on every read.

    The gain variation is a normal truncated at 3 sigma (NOISE-MODELS 4): no shifter
    lies beyond, none is pinned at the bound; its std is 0.98658 gain_sigma.

    ``noise_scale`` multiplies gain_sigma, crosstalk and phase noise, not the DAC bits;
    at ``noise_scale`` 0 the device is ideal: the engine skips the kind altogether, and
    ``program`` called directly leaves the weights unquantised too.
    """

    stages = frozenset({"program", "read"})

    def program(self, state: WeightState, ctx: StageContext) -> None:
        if ctx.scale == 0:
            return  # the ideal device, as NoiseKind's contract asks of every stage
        e = self.entry
        phi = quantized_phase(state.weights(), e.bits, e.v_pi)
        gain = ctx.truncated_randn(phi.shape, like=phi, bound=GAIN_TRUNCATION) * (e.gain_sigma * ctx.scale)
        phi = phi * (1.0 + gain)
        if e.crosstalk > 0:
            rows = phi.reshape(phi.shape[0], -1)  # shifters along one output's row are neighbours
            neighbours = torch.zeros_like(rows)
            neighbours[:, 1:] += rows[:, :-1]
            neighbours[:, :-1] += rows[:, 1:]
            phi = (rows + e.crosstalk * ctx.scale * neighbours).reshape(phi.shape)
        state.set_weights(torch.cos(phi))

    def read(self, w: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        sigma = self.entry.phase_noise_rad * ctx.scale
        if sigma == 0:
            return w
        phi = torch.arccos(w.clamp(-1.0, 1.0))
        return torch.cos(phi + sigma * ctx.randn(w.shape, like=w))


class PhotodetectorNoise(NoiseKind[Photodetector]):
    """Shot noise (std sqrt(|y| bound / photons)) and thermal noise (std thermal_sigma bound)."""

    stages = frozenset({"tile_outputs"})

    def tile_outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        e = self.entry
        thermal_var = (e.thermal_sigma * ctx.out_bound) ** 2
        if e.photons_full_scale is None:
            std = torch.zeros((), dtype=y.dtype, device=y.device).add_(thermal_var)
        else:  # in place on one fresh tensor: the same operations, three activation-sized copies fewer
            std = y.detach().abs().mul_(ctx.out_bound / e.photons_full_scale).add_(thermal_var)
        return add_scaled(y, ctx.randn(y.shape, like=y), std.sqrt_().mul_(ctx.scale))
