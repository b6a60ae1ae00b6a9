"""The base class of every noise entry in a profile's ``noise:`` list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class NoiseEntry(BaseModel):
    """One entry of a profile's ``noise`` list.

    Subclasses fix ``kind`` as a ``Literal`` with a default; that literal is the
    key the registry and profile files use, written once::

        class MyNoise(NoiseEntry):
            kind: Literal["my_noise"] = "my_noise"
            sigma: float = Field(0.1, ge=0, le=10, description="std, in units of w_max")

    Every magnitude an entry holds is multiplied by the profile's ``noise_scale``.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    kind: str = Field(description="Which registered noise model this entry configures.")
    note: str | None = Field(None, max_length=2000, description="Free text: where the numbers come from, caveats.")


def g_max_ref_field(default: float, description: str) -> Any:
    """The field of a published noise polynomial's reference g_max, in uS: the noise it
    describes scales with the profile's g_max relative to this one."""
    return Field(default, gt=0, le=1e4, description=description)


class VarianceAware(BaseModel):
    """Per-sample noise level, as in variance-aware noisy training (VANT, arXiv 2503.16183).

    In training mode each sample of a batch draws its own noise level
    sigma_s = sigma * (alpha + theta * |z|), z ~ N(0, 1); evaluation uses sigma.
    The public configuration writes the draw as alpha * sigma + theta * |z|; theta is
    read here relative to sigma, so that the draw follows the training level and
    ``noise_scale`` (with an absolute theta, training at sigma = 0.01 would inject
    noise of about 0.5) *(interpretation; unsure)*.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    alpha: float = Field(0.45, ge=0, le=100, description="Weight of the nominal sigma.")
    theta: float = Field(0.66, ge=0, le=100, description="Weight of |z|, z ~ N(0, 1).")
