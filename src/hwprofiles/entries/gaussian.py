"""The seed study's abstract noise models, on layer outputs in activation units."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwprofiles.entries.base import NoiseEntry, VarianceAware

_PER_SAMPLE = "Draw a sigma per sample (variance-aware training); null for one fixed sigma."


class GaussianAdditive(NoiseEntry):
    """y' = y + N(0, sigma^2), sigma absolute (activation units)."""

    kind: Literal["gaussian_additive"] = "gaussian_additive"
    sigma: float = Field(ge=0, le=1e4, description="Absolute std of the added noise, in activation units.")
    per_sample: VarianceAware | None = Field(None, description=_PER_SAMPLE)


class GaussianMultiplicative(NoiseEntry):
    """y' = y * N(1, sigma^2)."""

    kind: Literal["gaussian_multiplicative"] = "gaussian_multiplicative"
    sigma: float = Field(ge=0, le=1e4, description="Std of the multiplicative factor (dimensionless).")
    per_sample: VarianceAware | None = Field(None, description=_PER_SAMPLE)


class GaussianCombined(NoiseEntry):
    """y' = y * N(1, (A (1 - r))^2) + N(0, (A r)^2)."""

    kind: Literal["gaussian_combined"] = "gaussian_combined"
    amplitude: float = Field(ge=0, le=1e4, description="Amplitude A shared by both parts.")
    ratio: float = Field(gt=0, lt=1, description="Share r of the additive part; 1 - r goes to the multiplicative part.")
    per_sample: VarianceAware | None = Field(None, description=_PER_SAMPLE)
