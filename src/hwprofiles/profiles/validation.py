"""What a profile says about its own standing: how close it comes to published chips.

A :class:`Validation` entry puts an accuracy a real chip of the profile's kind reached
(as its source reports it) beside the figure hwprofiles reproduces under the profile in
the closest conditions it can run (``benchmarks/validate_profiles.py``), or says why one
of the two is missing. Entries document; they change no number and no content key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class PublishedFigure(BaseModel):
    """An accuracy a real chip of this kind reached, as its source reports it."""

    model_config = _STRICT

    source: str = Field(min_length=3, max_length=1000, description="The citation the figure comes from.")
    network: str = Field(min_length=1, max_length=200, description="The network as the source names it.")
    data: str = Field(min_length=1, max_length=200, description="The dataset, e.g. CIFAR-10.")
    conditions: str = Field(
        min_length=1, max_length=1000, description="How it was measured: training method, time after programming, ..."
    )
    accuracy: float = Field(ge=0, le=1, description="Top-1 accuracy as a fraction (0.937 for 93.7%).")
    float_accuracy: float | None = Field(None, ge=0, le=1, description="The same network in floating point, if given.")


class ReproducedFigure(BaseModel):
    """The closest figure hwprofiles reproduces under this profile (benchmarks/validate_profiles.py)."""

    model_config = _STRICT

    network: str = Field(min_length=1, max_length=200)
    data: str = Field(min_length=1, max_length=200)
    method: str = Field(min_length=1, max_length=100, description="Training method, e.g. nit.")
    conditions: str = Field(min_length=1, max_length=1000, description="Epochs, seeds, chips, time, calibration.")
    accuracy: float = Field(ge=0, le=1, description="Top-1 accuracy as a fraction (0.937 for 93.7%).")
    float_accuracy: float = Field(ge=0, le=1, description="The same network trained and evaluated noise-free.")
    training_seeds: StrictInt = Field(ge=1, description="Training seeds the accuracy is averaged over.")
    chips: StrictInt = Field(ge=1, description="Chip instances per trained model.")


class Validation(BaseModel):
    """How well the profile stands for published chips: a published figure beside the one
    hwprofiles reproduces under the closest conditions it can run, or why it is not validated.

    Documentation only: it takes no part in the noise, nor in the content key of a result.
    """

    model_config = _STRICT

    published: PublishedFigure | None = None
    reproduced: ReproducedFigure | None = None
    not_validated: str | None = Field(
        None, min_length=3, max_length=2000, description="Why there is no published or no reproduced figure."
    )

    @model_validator(mode="after")
    def _says_why(self) -> Validation:
        if self.not_validated is None and (self.published is None or self.reproduced is None):
            raise ValueError("give both 'published' and 'reproduced', or say in 'not_validated' why not")
        return self
