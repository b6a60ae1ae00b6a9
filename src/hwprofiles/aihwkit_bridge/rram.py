"""aihwkit's ReRAM noise models: Wan 2022 (NeuRRAM) as rram_relaxation, the CMO model as rram_cmo."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hwprofiles.aihwkit_bridge.fields import (
    CMO_ACCEPTANCE_RANGE,
    CMO_COEFF_DICT,
    CMO_FIELDS,
    CMO_G_MAX_US,
    CMO_G_MIN_US,
    PAIR_G_MAX_US,
    WAN2022_COEFF_DIC,
    WAN2022_FIELDS,
    WAN2022_G_MAX_REF_US,
)
from hwprofiles.aihwkit_bridge.reader import Reader, is_close, pair_g_max


def read_wan2022(
    model: dict[str, Any], path: str, reader: Reader, t_inference: float | None
) -> tuple[float, list[dict[str, Any]]]:
    """g_max and the rram_relaxation entry of a ``ReRamWan2022NoiseModel``."""
    reader.unknown(model, WAN2022_FIELDS, path, "ReRamWan2022NoiseModel")
    g_max = pair_g_max(model, path, reader, PAIR_G_MAX_US)
    coeff_dic = model.get("coeff_dic")
    if coeff_dic is not None:
        if not published_wan2022(coeff_dic):
            reader.refuse(
                f"{path}.coeff_dic",
                "rram_relaxation holds only the published polynomials of Wan et al. 2022 (1 s, 1 day, 2 days)",
            )
        reference = model.get("coeff_g_max_reference") or g_max
    else:
        reference = model.get("coeff_g_max_reference") or WAN2022_G_MAX_REF_US
    if t_inference is not None and not any(is_close(t_inference, t) for t in WAN2022_COEFF_DIC):
        reader.refuse(
            "t_inference", f"{t_inference:g} s: ReRamWan2022NoiseModel is defined at 1, 86400 and 172800 s only"
        )
    scale = reader.number(model, "noise_scale", path, 1.0)
    if scale == 0:
        return g_max, []
    if scale != 1:
        reader.refuse(
            f"{path}.noise_scale", f"{scale:g}: rram_relaxation has no scale of its own; only 0 and 1 translate"
        )
    return g_max, [{"kind": "rram_relaxation", "g_max_ref_us": float(reference)}]


def published_wan2022(coeff_dic: Any) -> bool:
    """Whether a ``coeff_dic`` holds exactly the published polynomials (at the published times)."""
    if not isinstance(coeff_dic, Mapping) or len(coeff_dic) != len(WAN2022_COEFF_DIC):
        return False
    for key, coefficients in coeff_dic.items():
        try:
            t = float(key)
            values = [float(c) for c in coefficients]
        except (TypeError, ValueError):
            return False
        expected = next((c for k, c in WAN2022_COEFF_DIC.items() if is_close(k, t)), None)
        if expected is None or len(values) != len(expected):
            return False
        if not all(is_close(a, b) for a, b in zip(values, expected)):
            return False
    return True


def read_cmo(model: dict[str, Any], path: str, reader: Reader) -> tuple[float, list[dict[str, Any]]]:
    """g_max and the rram_cmo entry of a ``ReRamCMONoiseModel`` (programming noise only)."""
    reader.unknown(model, CMO_FIELDS, path, "ReRamCMONoiseModel")
    g_max = reader.number(model, "g_max", path, CMO_G_MAX_US) if model.get("g_max") is not None else CMO_G_MAX_US
    g_min = reader.number(model, "g_min", path, CMO_G_MIN_US) if model.get("g_min") is not None else CMO_G_MIN_US
    reader.notes.append(
        f"ReRamCMONoiseModel maps weights onto one device from g_min = {g_min:g} to g_max = {g_max:g} uS and clips "
        "there; the profile maps them onto a differential pair from 0 to g_max. The programming noise, in uS, is "
        "carried over"
    )
    for key, reason in (("drift_scale", "conductance decay"), ("read_noise_scale", "read noise")):
        value = reader.number(model, key, path, 1.0)
        if value != 0:
            reader.refuse(
                f"{path}.{key}", f"{value:g}: the CMO model's {reason} has no profile kind; only 0 translates"
            )
    table = _cmo_table(model, path, reader)
    acceptance = reader.number(model, "acceptance_range", path, CMO_ACCEPTANCE_RANGE)
    if not table:
        return g_max, []
    chosen = next((k for k in table if is_close(k, acceptance)), None)
    if chosen is None:
        chosen = min(table)
        reader.notes.append(
            f"{path}.acceptance_range {acceptance:g} is not a key of coeff_dict ({', '.join(f'{k:g}' for k in sorted(table))}); "
            f"aihwkit then takes the smallest, {chosen:g}"
        )
    constant, slope = table[chosen]
    scale = reader.number(model, "prog_noise_scale", path, 1.0)
    if scale <= 0:
        return g_max, []
    # aihwkit: s = c0 + c1 g (uS); rram_cmo: s = (a + b x) g_max = a g_max + b g.
    return g_max, [{"kind": "rram_cmo", "a": scale * constant / g_max, "b": scale * slope}]


def _cmo_table(model: dict[str, Any], path: str, reader: Reader) -> dict[float, tuple[float, float]]:
    """The programming-noise coefficients (constant, slope) by acceptance range; aihwkit's when absent."""
    raw = model.get("coeff_dict")
    if raw is None:
        return dict(CMO_COEFF_DICT)
    table: dict[float, tuple[float, float]] = {}
    if not isinstance(raw, Mapping):
        reader.refuse(f"{path}.coeff_dict", "expected a mapping of acceptance range -> [constant, slope]")
        return table
    for key, value in raw.items():
        try:
            values = [float(v) for v in value]
            table[float(key)] = (values[0], values[1] if len(values) > 1 else 0.0)
            if len(values) > 2:
                raise ValueError
        except (TypeError, ValueError, IndexError):
            reader.refuse(f"{path}.coeff_dict.{key}", "expected [constant, slope] in uS: rram_cmo is linear")
    return table
