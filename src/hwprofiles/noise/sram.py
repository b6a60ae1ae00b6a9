"""SRAM charge-domain compute-in-memory."""

from __future__ import annotations

import torch

from hwprofiles.entries.sram import SramColumnNoise
from hwprofiles.noise.base import NoiseKind, StageContext


class SramColumnNoiseKind(NoiseKind[SramColumnNoise]):
    """Gaussian noise on each column's MAC, relative to its full scale (the tile's rows in
    use); bit-serial conversion's shift-and-add is folded into the std (see the entry)."""

    stages = frozenset({"tile_outputs"})

    def tile_outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        sigma = self.entry.full_scale_fraction * ctx.tile_rows * ctx.scale
        return ctx.add_noise(y, sigma)  # drawn and added in one pass
