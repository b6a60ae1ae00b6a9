"""SRAM charge-domain compute-in-memory."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, StrictInt, model_validator

from hwprofiles.entries.base import NoiseEntry


class SramColumnNoise(NoiseEntry):
    """Gaussian noise on each column's MAC, as a percentage of the column's full scale.

    The full scale of a column is the number of rows the layer occupies in one tile
    (normalised |x|, |w| <= 1).

    Bit-serial macros (``input_bits`` and ``weight_bits`` set) convert one input bit
    against one weight bit at a time: a column sum of binary products that an ADC of
    log2(rows + 1) bits resolves exactly, with the noise of one conversion
    (``sigma_percent_fs`` of that binary full scale). Digital shift-and-add weighs the
    conversion of bits b and k by 2^(b+k), so the multi-bit result carries their noise
    summed: std = sigma x sqrt(sum 4^b x sum 4^k) / ((2^Bi - 1)(2^Bw - 1)) of its full
    scale, 0.336 sigma for 8-bit inputs and weights (ASiM, arXiv 2411.11022). The ADC's
    rounding of each noisy conversion (1/12 LSB^2, 8% of the variance at 1 LSB of noise)
    is not added.
    """

    kind: Literal["sram_column_noise"] = "sram_column_noise"
    sigma_percent_fs: float = Field(
        ge=0, le=100, description="Std of the noise of one conversion, in % of its full scale."
    )
    input_bits: StrictInt | None = Field(
        None, ge=1, le=16, description="Bit-serial: input bits converted one at a time; null: one multi-bit conversion."
    )
    weight_bits: StrictInt | None = Field(
        None, ge=1, le=16, description="Bit-serial: weight bits, one column each; set with input_bits."
    )

    @model_validator(mode="after")
    def _bit_serial_needs_both(self) -> SramColumnNoise:
        if (self.input_bits is None) != (self.weight_bits is None):
            raise ValueError("set both input_bits and weight_bits for bit-serial conversion, or neither")
        return self

    @property
    def full_scale_fraction(self) -> float:
        """Std of the noise on the MAC, in full scales of the column, at noise_scale 1."""
        sigma = self.sigma_percent_fs / 100.0
        if self.input_bits is None or self.weight_bits is None:
            return sigma
        return sigma * _shift_add_gain(self.input_bits) * _shift_add_gain(self.weight_bits)


def _shift_add_gain(bits: int) -> float:
    """sqrt(sum of 4^b) / (sum of 2^b) for b < bits: how much of one bit-plane conversion's
    noise, relative to its full scale, reaches the shift-added multi-bit result."""
    return math.sqrt((4**bits - 1) / 3) / (2**bits - 1)
