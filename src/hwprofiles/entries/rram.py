"""Resistive RAM: NeuRRAM relaxation (Wan 2022) and the filamentary HfOx CMO model."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwprofiles.entries.base import NoiseEntry, g_max_ref_field

# Wan et al., Nature 2022 (doi 10.1038/s41586-022-04992-8): std of conductance
# relaxation after write-verify as a 4th-order polynomial in x = g/g_max, in uS at
# g_max = 40 uS, highest power first. Keys: seconds since programming.
NEURRAM_RELAXATION_US: dict[float, tuple[float, float, float, float, float]] = {
    1.0: (-16.815, 45.393, -43.853, 16.030, 0.348),
    86_400.0: (-16.458, 47.095, -50.773, 22.086, 0.701),
    172_800.0: (-11.934, 37.062, -43.507, 20.274, 0.782),
}
NEURRAM_G_MAX_REF_US = 40.0  # the g_max of the polynomials above


class RramRelaxation(NoiseEntry):
    """Conductance relaxation after write-verify, at the times NeuRRAM measured (1 s, 1 day, 2 days)."""

    kind: Literal["rram_relaxation"] = "rram_relaxation"
    g_max_ref_us: float = g_max_ref_field(
        NEURRAM_G_MAX_REF_US, "g_max of the published polynomials; sigma scales by g_max/g_max_ref."
    )


class RramCmo(NoiseEntry):
    """Filamentary HfOx (CMO) programming noise, linear in conductance: s = (a + b x) g_max.

    IBM's analog kit writes it s = c0 + c1 g with c0 in uS (0.0113 uS and c1 = 0.0112
    for a 2% acceptance range); here a = c0 / g_max and b = c1, so the defaults are the
    kit's coefficients at its g_max of 88.2 uS.
    """

    kind: Literal["rram_cmo"] = "rram_cmo"
    a: float = Field(0.0113 / 88.2, ge=0, le=1, description="Constant part of s, as a fraction of g_max (c0 / g_max).")
    b: float = Field(0.0112, ge=0, le=1, description="Slope of s in x = g/g_max (c1, dimensionless).")
