"""SRAM charge-domain compute-in-memory."""

from __future__ import annotations

import torch

from hwprofiles.entries.sram import SramColumnNoise
from hwprofiles.noise.base import NoiseKind, StageContext


class SramColumnNoiseKind(NoiseKind[SramColumnNoise]):
    """Gaussian noise of sigma_percent_fs % of a column's full scale (the tile's rows)."""

    stages = frozenset({"tile_outputs"})

    def tile_outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        sigma = self.entry.sigma_percent_fs / 100.0 * ctx.tile_rows * ctx.scale
        return ctx.add_noise(y, sigma)  # drawn and added in one pass
