"""SRAM charge-domain compute-in-memory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwprofiles.entries.base import NoiseEntry


class SramColumnNoise(NoiseEntry):
    """Gaussian noise on each column's MAC, as a percentage of the column's full scale.

    The full scale of a column is the number of rows the layer occupies in one tile
    (normalised |x|, |w| <= 1).
    """

    kind: Literal["sram_column_noise"] = "sram_column_noise"
    sigma_percent_fs: float = Field(ge=0, le=100, description="Std of the noise, in % of full scale.")
