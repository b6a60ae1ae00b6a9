"""What a conversion did: every matrix layer, converted or left float and why.

>>> import torch.nn as nn, hwprofiles
>>> model = nn.Sequential(nn.Linear(4, 4), nn.Bilinear(4, 4, 2))
>>> print(hwprofiles.conversion_report(model, "pcm-joshi2020"))
layer  float type  noisy twin / why float
-----  ----------  ---------------------------------------------------------------------------
0      Linear      NoisyLinear
1      Bilinear    float: no noisy twin for this type (give one with mapping= or a plugin's hwprofiles_swap_layer)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch.nn as nn

from hwprofiles.errors import ConversionError, FloatLayerWarning

# Layers that compute matrix products: each is converted, or named as left float.
MATRIX_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Bilinear,
    nn.modules.conv._ConvNd,
    nn.MultiheadAttention,
    nn.RNNBase,
    nn.RNNCellBase,
)

EXCLUDED = "excluded"  # by the user's exclude=
PLUGIN = "plugin"  # kept float by a plugin's hwprofiles_swap_layer (the hardware computes it digitally)
SUBCLASS = "subclass"  # a subclass of a type with a twin: it may compute something else
UNSUPPORTED = "unsupported"  # no twin for this type, or for this configuration of it
DELIBERATE = frozenset({EXCLUDED, PLUGIN})


@dataclass(frozen=True)
class Converted:
    name: str
    float_type: type
    twin_type: type


@dataclass(frozen=True)
class LeftFloat:
    name: str
    float_type: type
    category: str  # EXCLUDED, PLUGIN, SUBCLASS or UNSUPPORTED
    reason: str


def _label(name: str) -> str:
    return name or "(the model)"


@dataclass
class ConversionReport:
    """Every matrix layer of a model, converted (float type -> twin type) or left float (with why).

    Attributes:
        profile: the profile's name.
        converted: the layers given a noisy twin, in model order.
        left_float: the matrix layers that stayed float, each with its reason.
    """

    profile: str
    converted: list[Converted] = field(default_factory=list)
    left_float: list[LeftFloat] = field(default_factory=list)

    @property
    def unintended(self) -> list[LeftFloat]:
        """The float matrix layers nobody asked for (not excluded, not kept by a plugin)."""
        return [f for f in self.left_float if f.category not in DELIBERATE]

    def __str__(self) -> str:
        rows = [(_label(c.name), c.float_type.__name__, c.twin_type.__name__) for c in self.converted]
        rows += [(_label(f.name), f.float_type.__name__, f"float: {f.reason}") for f in self.left_float]
        if not rows:
            return f"no matrix layers (profile '{self.profile}')"
        head = ("layer", "float type", "noisy twin / why float")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(2)]
        lines = [f"{head[0]:<{widths[0]}}  {head[1]:<{widths[1]}}  {head[2]}"]
        lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * min(75, max(len(r[2]) for r in [head, *rows]))}")
        lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
        return "\n".join(line.rstrip() for line in lines)

    def message(self) -> str:
        """One paragraph naming the unintended float layers and how to map them."""
        layers = "; ".join(f"'{_label(f.name)}' ({f.float_type.__name__}: {f.reason})" for f in self.unintended)
        return (
            f"to_noisy left {len(self.unintended)} matrix layer(s) float, so their products carry no noise "
            f"under '{self.profile}': {layers}. Give each a twin with mapping={{FloatType: TwinType}} (or a "
            "plugin's hwprofiles_swap_layer), keep it float on purpose with exclude=[name], or pass "
            "strict=True to make this an error; to_noisy(..., report=True) lists every layer."
        )

    def check(self, strict: bool, stacklevel: int = 3) -> None:
        """Warn once (or raise, when ``strict``) if a matrix layer stayed float unasked."""
        if not self.unintended:
            return
        if strict:
            raise ConversionError(self.message())
        warnings.warn(FloatLayerWarning(self.message()), stacklevel=stacklevel)


__all__ = ["MATRIX_TYPES", "ConversionReport", "FloatLayerWarning"]
