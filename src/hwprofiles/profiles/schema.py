"""The profile schema: what a profile file may say, and how it is read, validated and written.

A profile is a YAML file describing one device: its peripherals (DAC, ADC, tiles,
weight mapping) and an ordered list of noise entries, each keyed by ``kind``. The
union of allowed kinds is built from the noise-model registry once plugins load,
and built again when a kind is registered.

    >>> p = parse_profile({"name": "lab", "technology": "pcm", "description": "A lab chip.", "adc": {"bits": 6}})
    >>> p.adc.bits
    6
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    create_model,
    field_validator,
)
from pydantic_core import ErrorDetails

from hwprofiles import registry
from hwprofiles.entries.base import NoiseEntry
from hwprofiles.errors import ProfileError
from hwprofiles.profiles.validation import Validation
from hwprofiles.untrusted import printable, read_yaml_file

PROFILE_SUFFIXES = (".yaml", ".yml")
"""Suffixes of the files the profile library searches its directories for."""
PROFILE_FILE_SUFFIXES = (*PROFILE_SUFFIXES, ".json")
"""Suffixes of the files read as profiles when named or imported: YAML, and JSON (which is
YAML). The library leaves JSON out of its directories, where other tools' configs lie."""

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class Reference(BaseModel):
    """A source the profile's numbers rest on. A bare string is read as ``citation``."""

    model_config = _STRICT

    citation: str = Field(min_length=3, max_length=1000, description="Authors, title, venue, year.")
    doi: str | None = Field(None, max_length=200, description="DOI, without the https://doi.org/ prefix.")
    url: str | None = Field(None, max_length=1000, description="Where to read it.")
    supports: str | None = Field(None, max_length=1000, description="Which numbers of the profile it supports.")


class DAC(BaseModel):
    """The input digital-to-analog converter: inputs are clipped to +-bound, then quantised."""

    model_config = _STRICT

    bits: StrictInt | None = Field(
        8, ge=1, le=24, description="Resolution in bits (signed, 2^(b-1)-1 levels a side); null: no quantisation."
    )
    bound: float = Field(1.0, gt=0, le=1e6, description="Input bound, in activation units; inputs beyond it clip.")
    bound_mode: Literal["fixed", "calibrated"] = Field(
        "fixed", description="fixed: use bound; calibrated: set per layer from data (a percentile of |x|)."
    )
    calibration_percentile: float = Field(
        99.99, ge=50, le=100, description="Percentile of |x| that calibration takes as the bound."
    )


class ADC(BaseModel):
    """The output analog-to-digital converter of each tile."""

    model_config = _STRICT

    bits: StrictInt | None = Field(8, ge=1, le=24, description="Resolution in bits (signed); null: no quantisation.")
    bound: float = Field(
        10.0,
        gt=0,
        le=1e6,
        description="Output bound in normalised units (inputs scaled to |x| <= 1, weights to |w| <= 1); outputs saturate there.",
    )
    per_row: bool = Field(
        False,
        description="The bound is per row used: the ADC spans bound x (rows a layer occupies in one tile), "
        "as in SRAM compute-in-memory, where each column is normalised to its full scale.",
    )
    bound_mode: Literal["fixed", "calibrated"] = Field(
        "fixed",
        description="fixed: the ADC spans the bound; calibrated: its range is set per layer from data (a "
        "percentile of |partial sums| of a tile, after the device noise), as chips calibrate each layer's ADC "
        "gain. The range never exceeds the bound; output noise stays relative to the bound.",
    )
    calibration_percentile: float = Field(
        99.99, ge=50, le=100, description="Percentile of |partial sums| that calibration takes as the range."
    )


class Tile(BaseModel):
    """The size of one crossbar array. Inputs beyond ``rows`` are split into several tiles."""

    model_config = _STRICT

    rows: StrictInt = Field(512, ge=1, le=1_048_576, description="Max inputs (rows) of one array.")
    cols: StrictInt = Field(
        512,
        ge=1,
        le=1_048_576,
        description="Max outputs (columns) of one array; outputs are independent, so this changes no noise statistic.",
    )


class Mapping(BaseModel):
    """How weights become conductances: g = |w| / w_max * g_max on one device of a differential pair."""

    model_config = _STRICT

    # default= spelled out: type checkers read a positional default as a required field.
    scale: Literal["per_tensor", "per_channel"] = Field(
        default="per_channel", description="w_max taken over the whole tensor or per output channel."
    )
    g_max_us: float = Field(default=25.0, gt=0, le=1e4, description="Conductance of the largest weight, in uS.")


class Profile(BaseModel):
    """A hardware profile. Load one with :func:`load_profile`; validate data with :func:`parse_profile`.

    The ``noise`` list of a loaded profile holds entries of the registered kinds.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100, description="Unique name, lower-case, e.g. pcm-joshi2020."
    )
    technology: str = Field(
        pattern=r"^[a-z][a-z0-9_-]*$",
        max_length=50,
        description="Device family: pcm, rram, photonic, sram, generic, or one a plugin brings.",
    )
    description: str = Field(min_length=1, max_length=5000, description="What device this is, and what is unsure.")
    references: list[Reference | str] = Field(
        default_factory=list, description="The literature the numbers rest on; a bare string is read as a citation."
    )
    dac: DAC | None = Field(None, description="Input DAC; null: inputs enter unclipped and unquantised.")
    adc: ADC | None = Field(None, description="Output ADC; null: outputs unclipped and unquantised.")
    tile: Tile | None = Field(None, description="Array size; null: one array of unlimited size.")
    mapping: Mapping = Field(default_factory=Mapping, description="Weight-to-conductance mapping.")
    noise: list[NoiseEntry] = Field(
        default_factory=list, description="Noise sources, applied in order within each stage."
    )
    noise_scale: float = Field(
        1.0,
        ge=0,
        le=1e6,
        description=(
            "Multiplies every noise magnitude; 0 makes the device noise-free, while its DAC and ADC "
            "still quantise (set dac and adc to null as well for the float model)."
        ),
    )
    placement: Literal["matmul", "every_layer"] = Field(
        "matmul",
        description="matmul: noise in matrix products (conv, linear) only; every_layer: output noise also after "
        "the input and every layer (conv, linear, BN, activation, pooling), as the seed study does.",
    )
    t_inference_s: float = Field(
        1.0, ge=0, le=1e10, description="Default time between programming and inference, in s."
    )
    validation: list[Validation] = Field(
        default_factory=list,
        description="Published chip figures and the figures reproduced under this profile (documentation only).",
    )
    stress: bool = Field(
        False,
        description="A stress profile: harsher than published chips on purpose; models are not expected to come "
        "near their float accuracy under it.",
    )

    @field_validator("references", mode="before")
    @classmethod
    def _bare_citations(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"citation": v} if isinstance(v, str) else v for v in value]
        return value

    def with_noise_scale(self, noise_scale: float) -> Profile:
        """A copy of this profile with another global noise scale.

        Raises:
            ProfileError: ``noise_scale`` is NaN, infinite or negative (``model_copy``
                would not validate it).

        >>> import hwprofiles
        >>> hwprofiles.load_profile("pcm-joshi2020").with_noise_scale(0.5).noise_scale
        0.5
        """
        value = _noise_scale(noise_scale)
        return self.model_copy(update={"noise_scale": value})

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # The class of a loaded profile is built at run time from the registered kinds
        # (profile_model), so pickle cannot find it by name; the data, validated again
        # on load, is what travels (deep copies, torch.save, other processes).
        return _unpickle_profile, (self.model_dump(mode="json"),)

    def kinds(self) -> list[str]:
        """The ``kind`` of every noise entry, in order."""
        return [entry.kind for entry in self.noise]


def _noise_scale(value: Any) -> float:
    """``value`` as a valid noise scale, or ProfileError saying what is wrong with it."""
    try:
        scale = float(value)
    except (TypeError, ValueError):
        raise ProfileError(f"noise_scale must be a number, got {value!r}") from None
    # Only what no noise can mean: a profile file is further bounded (le=1e6), but stress
    # tests scale far beyond a device on purpose.
    if not math.isfinite(scale) or scale < 0:
        raise ProfileError(
            f"noise_scale must be a finite number >= 0 (0: noise-free, 1: the profile as measured), got {value!r}"
        )
    return scale


def _unpickle_profile(data: dict[str, Any]) -> Profile:
    return parse_profile(data, source="<pickled profile>")


# The Profile subclass built from the registered kinds; dropped when a kind comes or goes.
_profile_model: type[Profile] | None = None


def invalidate_profile_model() -> None:
    """Forget the :func:`profile_model` built so far (a kind was registered or forgotten)."""
    global _profile_model
    _profile_model = None


registry.on_change(invalidate_profile_model)


def profile_model() -> type[Profile]:
    """The :class:`Profile` subclass whose ``noise`` entries are the registered kinds.

    Built after plugins load and kept until a kind is registered or forgotten.
    """
    global _profile_model
    models = registry.noise_models()  # first: loading the plugins registers kinds
    cached = _profile_model
    if cached is not None:
        return cached
    entries = tuple(m.entry_model for m in sorted(models.values(), key=lambda m: m.kind))
    if entries:
        union = entries[0] if len(entries) == 1 else Union[entries]  # noqa: UP007 (built at run time)
        entry_type: Any = Annotated[union, Field(discriminator="kind")]
    else:
        entry_type = NoiseEntry
    model = create_model(
        "Profile",
        __base__=Profile,
        __module__=__name__,
        noise=(list[entry_type], Field(default_factory=list, description=Profile.model_fields["noise"].description)),
    )
    _profile_model = model
    return model


def _loc(loc: tuple[Any, ...], data: Any) -> str:
    """``noise.2.sigma`` from pydantic's location, without the union's tag."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "noise" and isinstance(loc[i - 1], int) and isinstance(part, str):
            entry = _get(data, loc[:i])
            if isinstance(entry, dict) and entry.get("kind") == part:
                continue  # the discriminator's tag, e.g. noise.2.pcm_drift.t0_s
        parts.append(str(part))
    return ".".join(parts) or "(top level)"


def _get(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _message(error: ErrorDetails) -> str:
    if error["type"] == "union_tag_invalid":
        return registry.unknown_kind_message(error["ctx"]["tag"])
    if error["type"] == "union_tag_not_found":
        return "missing 'kind': every noise entry needs one"
    if error["type"] == "extra_forbidden":
        return "unknown field (check its spelling; `hwprofiles profiles schema` lists the valid ones)"
    return error["msg"]


def format_validation_error(exc: ValidationError, data: Any, source: str) -> str:
    """One line per error: ``source: field.path: message``."""
    lines = [printable(f"{source}: {_loc(tuple(e['loc']), data)}: {_message(e)}") for e in exc.errors()]
    return "\n".join(lines)


def _reject_non_finite(data: Any, source: str, path: str = "") -> None:
    # YAML's .nan/.inf reach fields typed `float | None` or tuples before pydantic's
    # allow_inf_nan check does in every case, so catch them here with their path.
    if isinstance(data, float) and not math.isfinite(data):
        raise ProfileError(f"{source}: {path or '(top level)'}: {data} is not a finite number")
    if isinstance(data, dict):
        for key, value in data.items():
            _reject_non_finite(value, source, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            _reject_non_finite(value, source, f"{path}.{i}" if path else str(i))


def parse_profile(data: Any, source: str = "<profile>") -> Profile:
    """Validate profile data (a mapping, as read from YAML or JSON).

    Raises:
        ProfileError: with one line per problem, each naming ``source`` and the field path.
    """
    if data is None:
        raise ProfileError(f"{source}: the file is empty; a profile needs at least name, technology and description")
    if not isinstance(data, dict):
        raise ProfileError(
            f"{source}: expected a mapping of profile fields (name: ..., technology: ...), got a {type(data).__name__}"
        )
    _reject_non_finite(data, source)
    try:
        return profile_model().model_validate(data)
    except ValidationError as exc:
        raise ProfileError(format_validation_error(exc, data, source)) from None


def read_profile_file(path: str | Path) -> Profile:
    """Load and validate one profile file (YAML or JSON, read with a safe loader).

    Raises:
        ProfileError: the file cannot be read (see :func:`~hwprofiles.untrusted.read_yaml_file`)
            or is not a valid profile.
    """
    data = read_yaml_file(path, error=ProfileError)  # a safe loader, within limits (docs/security.md)
    return parse_profile(data, source=printable(str(path)))


def dump_profile(profile: Profile) -> str:
    """The profile as YAML, every default filled in."""
    data = profile.model_dump(mode="json")
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def profile_json_schema() -> dict[str, Any]:
    """The JSON Schema of a profile file, with every registered noise kind."""
    schema = profile_model().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hwprofiles hardware profile"
    return schema
