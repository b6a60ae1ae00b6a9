"""Photonic meshes: phase-encoded weights and photodetection."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt

from hwprofiles.entries.base import NoiseEntry


class PhotonicPhase(NoiseEntry):
    """Weights as phases w = cos(phi), phi = gamma V^2 set by a b-bit voltage DAC.

    Per chip instance: each shifter's gain gamma varies as a normal truncated at 3 sigma
    (draws beyond are redrawn, not clipped; std 0.98658 gain_sigma) and couples thermally
    to its neighbours along a row. Per read: phase noise.
    """

    kind: Literal["photonic_phase"] = "photonic_phase"
    bits: StrictInt | None = Field(
        8, ge=1, le=16, description="Bits of the phase-shifter voltage DAC; null: continuous."
    )
    v_pi: float = Field(4.36, gt=0, le=100, description="Voltage giving a phase of pi, in V.")
    gain_sigma: float = Field(
        0.002, ge=0, le=1, description="Relative std of each shifter's gain gamma, before truncation at 3 sigma."
    )
    crosstalk: float = Field(
        0.005, ge=0, le=0.5, description="Thermal crosstalk c: phi_i += c (phi_(i-1) + phi_(i+1))."
    )
    phase_noise_rad: float = Field(0.0, ge=0, le=3.2, description="Std of per-read phase noise, in rad.")


class Photodetector(NoiseEntry):
    """Detection noise on each tile's outputs: shot noise (signal-dependent) and thermal noise."""

    kind: Literal["photodetector"] = "photodetector"
    photons_full_scale: float | None = Field(
        1e4,
        gt=0,
        le=1e12,
        description="Photons detected at full scale (|y| = adc.bound); shot-noise std of y is "
        "sqrt(|y| bound / photons). null: no shot noise.",
    )
    thermal_sigma: float = Field(0.0, ge=0, le=1, description="Std of thermal noise, as a fraction of adc.bound.")
