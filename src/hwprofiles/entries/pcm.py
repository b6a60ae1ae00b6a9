"""Phase-change memory: the phenomenological model of Nandakumar 2019 / Joshi 2020."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hwprofiles.entries.base import NoiseEntry, g_max_ref_field

# The published statistics (Nandakumar 2019, Joshi 2020); IBM's analog kit takes the
# same numbers as the defaults of its PCM-like model, so its bridge reads them here.
PROGRAMMING_COEFFICIENTS_US: tuple[float, float, float] = (0.26348, 1.9650, -1.1731)
PROGRAMMING_G_MAX_REF_US = 25.0
DRIFT_T0_S = 20.0
READ_Q_COEFFICIENT = 0.0088
READ_Q_EXPONENT = 0.65
READ_Q_MAX = 0.2
READ_T_READ_S = 250e-9


class PcmProgramming(NoiseEntry):
    """g_prog = g_target + N(0, s(x)^2), s(x) = max(c0 + c1 x + c2 x^2, 0) uS at g_max_ref_us."""

    kind: Literal["pcm_programming"] = "pcm_programming"
    coefficients_us: tuple[float, float, float] = Field(
        PROGRAMMING_COEFFICIENTS_US,
        description="c0, c1, c2 of the programming-noise polynomial in x = g_target/g_max, in uS.",
    )
    g_max_ref_us: float = g_max_ref_field(
        PROGRAMMING_G_MAX_REF_US, "g_max the polynomial was fitted at; s scales by g_max/g_max_ref."
    )


class PcmDrift(NoiseEntry):
    """g(t) = g_prog ((t + t0)/t0)^-nu, nu ~ |N(mu_nu(x), s_nu(x)^2)| per device.

    With ``compensation``, outputs are multiplied by sum(g+ + g-) after programming over
    sum(g+ + g-) at time t, summed over the layer: a reference read that is positive by
    construction, so it undoes the mean drift on every layer, also on one whose rows
    sum to zero.
    """

    kind: Literal["pcm_drift"] = "pcm_drift"
    t0_s: float = Field(DRIFT_T0_S, gt=0, le=1e6, description="Reference time t0 after programming, in s.")
    nu_mean: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Fixed mean drift exponent; null: mu_nu(x) = clip(-0.0155 ln x + 0.0244, 0.049, 0.1).",
    )
    nu_std: float | None = Field(
        None, ge=0, le=1, description="Fixed std of nu; null: s_nu(x) = clip(-0.0125 ln x - 0.0059, 0.008, 0.045)."
    )
    compensation: bool = Field(
        True,
        description="Global drift compensation: rescale outputs by the ratio of the summed conductance of both "
        "devices of every weight (g+ plus g-) read right after programming and at time t, about "
        "((t + t0)/t0)^mean(nu). A sum of conductances cannot cancel, so layers whose rows sum to zero are "
        "compensated like any other (aihwkit's GlobalDriftCompensation reads mean |output| of a forward pass).",
    )


class PcmRead1f(NoiseEntry):
    """Accumulated 1/f read noise: g += |g| Q_s(x) sqrt(ln((t + t_r)/(2 t_r))) N(0, 1)."""

    kind: Literal["pcm_read_1f"] = "pcm_read_1f"
    q_coefficient: float = Field(
        READ_Q_COEFFICIENT, ge=0, le=1, description="Q_s = min(q_coefficient / x^q_exponent, q_max)."
    )
    q_exponent: float = Field(READ_Q_EXPONENT, ge=0, le=5, description="Exponent of x in Q_s.")
    q_max: float = Field(READ_Q_MAX, ge=0, le=1, description="Upper limit of Q_s.")
    t_read_s: float = Field(READ_T_READ_S, gt=0, le=1, description="Read duration t_r, in s.")
