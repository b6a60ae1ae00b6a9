"""Noise of the array periphery and of reading weights, shared by many technologies."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwprofiles.entries.base import NoiseEntry


class OutputNoise(NoiseEntry):
    """Additive Gaussian noise on each tile's partial sums, before the ADC.

    With ``relative_to: absolute`` sigma is in normalised output units (|x| <= 1
    times |w| <= 1, summed over a tile's rows), as the ``out_noise`` of IBM's analog
    kit; with ``out_bound`` it is a fraction of the ADC's output bound.
    """

    kind: Literal["output_noise"] = "output_noise"
    sigma: float = Field(ge=0, le=100, description="Std of the output noise (see relative_to).")
    relative_to: Literal["out_bound", "absolute"] = Field(
        "out_bound", description="out_bound: sigma is a fraction of adc.bound; absolute: normalised units."
    )


class WeightReadNoise(NoiseEntry):
    """Short-term read noise of the weights, drawn fresh on every matrix product."""

    kind: Literal["weight_read_noise"] = "weight_read_noise"
    sigma: float = Field(ge=0, le=10, description="Std of the additive weight noise, as a fraction of w_max.")


class StuckAt(NoiseEntry):
    """Cells pinned at g_min (SA0) or g_max (SA1), drawn once per chip instance.

    Each device of a weight's differential pair fails independently.
    """

    kind: Literal["stuck_at"] = "stuck_at"
    p_sa0: float = Field(0.0, ge=0, le=1, description="Probability that a device is stuck at g_min (0 uS).")
    p_sa1: float = Field(0.0, ge=0, le=1, description="Probability that a device is stuck at g_max.")
