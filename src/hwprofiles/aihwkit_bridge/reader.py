"""Walking an aihwkit settings dict: typed reads that collect refusals and notes instead of raising."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any


class Reader:
    """Collects refusals and notes while walking the dict.

    Attributes:
        refused: one ``path: reason`` line per field that cannot be translated.
        notes: how fields were read where it is not one to one.
    """

    def __init__(self) -> None:
        self.refused: list[str] = []
        self.notes: list[str] = []

    def refuse(self, path: str, reason: str) -> None:
        """Record that the field at ``path`` cannot be translated, and why."""
        self.refused.append(f"{path}: {reason}")

    def section(self, data: Mapping[str, Any], key: str, path: str = "") -> dict[str, Any] | None:
        """A nested mapping, ``{}`` when absent, ``None`` when explicitly null."""
        where = f"{path}.{key}" if path else key
        if key not in data:
            return {}
        value = data[key]
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.refuse(where, f"expected a mapping of fields, got {type(value).__name__}")
            return {}
        return dict(value)

    def number(self, data: Mapping[str, Any], key: str, path: str, default: float) -> float:
        """A finite number, ``default`` when absent (or refused)."""
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.refuse(f"{path}.{key}", f"expected a finite number, got {value!r}")
            return default
        return float(value)

    def flag(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        """A boolean, ``default`` when absent (or refused)."""
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.refuse(f"{path}.{key}", f"expected true or false, got {value!r}")
            return default
        return value

    def unknown(self, data: Mapping[str, Any], known: set[str], path: str, what: str) -> None:
        """Refuse every field of ``data`` that is not in ``known``."""
        for key in sorted(set(data) - known):
            self.refuse(
                f"{path}.{key}" if path else key, f"not a field of {what} that this bridge knows; not translated"
            )


def enum_key(value: Any) -> str:
    """``WeightNoiseType.ADDITIVE_CONSTANT``, ``ADDITIVE_CONSTANT``, ``AdditiveConstant`` -> ``additiveconstant``."""
    text = str(value).rsplit(".", 1)[-1]
    return re.sub(r"[^a-z0-9]", "", text.lower())


def type_name(value: Any) -> str:
    """A class name without its module (``aihwkit.x.PCMLikeNoiseModel`` -> ``PCMLikeNoiseModel``); ``""`` for None."""
    return str(value).rsplit(".", 1)[-1] if value is not None else ""


def is_close(a: float, b: float, rel: float = 1e-9) -> bool:
    """Equal up to a relative tolerance (numbers travel through JSON and decimal text)."""
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


def pair_g_max(model: dict[str, Any], path: str, reader: Reader, default: float) -> float:
    """g_max of a model, from its g_converter when it has one (as aihwkit does)."""
    g_max = model.get("g_max")
    converter = model.get("g_converter")
    if converter is not None:
        if not isinstance(converter, Mapping):
            reader.refuse(f"{path}.g_converter", "expected a mapping with type, g_max, g_min")
            converter = {}
        kind = type_name(converter.get("type", "SinglePairConductanceConverter"))
        if kind != "SinglePairConductanceConverter":
            reader.refuse(
                f"{path}.g_converter.type",
                f"{kind}: profiles map each weight onto one device of a differential pair (SinglePairConductanceConverter)",
            )
        reader.unknown(converter, {"type", "g_max", "g_min"}, f"{path}.g_converter", "SinglePairConductanceConverter")
        g_min = reader.number(converter, "g_min", f"{path}.g_converter", 0.0)
        if g_min != 0:
            reader.refuse(f"{path}.g_converter.g_min", f"{g_min:g}: profiles map weight 0 to 0 uS")
        if "g_max" in converter:
            converter_g_max = reader.number(converter, "g_max", f"{path}.g_converter", default)
            if g_max is not None and g_max != converter_g_max:
                reader.notes.append(
                    f"{path}.g_max {g_max} is overridden by g_converter.g_max {converter_g_max}, as in aihwkit"
                )
            return converter_g_max
    if g_max is None:
        return default
    return reader.number(model, "g_max", path, default)
