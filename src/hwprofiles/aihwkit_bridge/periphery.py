"""aihwkit's ``forward`` (DAC, ADC, weight and output noise) and ``mapping`` (tiles, weight scaling)."""

from __future__ import annotations

import math
from typing import Any

from hwprofiles.aihwkit_bridge.fields import (
    FORWARD_DEFAULTS,
    FORWARD_FIELDS,
    FORWARD_NEUTRAL,
    MAPPING_DEFAULTS,
    MAPPING_TRAINING,
)
from hwprofiles.aihwkit_bridge.reader import Reader, enum_key, is_close

_PATH = "forward"
_UNLIMITED_TILE = 1_048_576  # a profile's largest tile, for aihwkit's 0 (unlimited)


def bits_from_resolution(res: float, path: str, reader: Reader) -> int | None:
    """DAC/ADC bits from aihwkit's resolution: ``2^b - 2`` steps over the full range."""
    if res <= 0:
        return None
    steps = 1.0 / res if res <= 1 else res
    if is_close(steps, round(steps), 1e-6):
        steps = float(round(steps))
    exact = math.log2(steps + 2)
    bits = max(1, round(exact))
    if not is_close(exact, bits, 1e-9):
        reader.notes.append(
            f"{path} = {res:g} means {steps:g} steps, which is not 2^b - 2 for a whole b (b = {exact:.3f}); "
            f"rounded to {bits} bits ({2**bits - 2} steps)"
        )
    if bits > 24:
        reader.refuse(path, f"{steps:g} steps would need {bits} bits; a profile's converter has at most 24")
        return 24
    return bits


def read_forward(forward: dict[str, Any] | None, reader: Reader) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The profile's dac/adc fields and its weight_read_noise/output_noise entries."""
    if forward is None:
        reader.refuse(_PATH, "null; give the forward IOParameters (or leave the key out for aihwkit's defaults)")
        forward = {}
    reader.unknown(forward, FORWARD_FIELDS, _PATH, "forward (IOParameters)")
    if reader.flag(forward, "is_perfect", _PATH, False):
        ignored = sorted(k for k in forward if k != "is_perfect" and k in FORWARD_FIELDS)
        if ignored:
            reader.notes.append(f"forward.is_perfect is true: {', '.join(ignored)} have no effect and were not read")
        return {"dac": None, "adc": None}, []
    _check_neutral(forward, reader)
    fields = {"dac": _read_dac(forward, reader), **_read_adc(forward, reader)}
    _check_bound_management(forward, reader)
    return fields, _read_periphery_noise(forward, reader)


def _check_neutral(forward: dict[str, Any], reader: Reader) -> None:
    for key, (neutral, reason) in FORWARD_NEUTRAL.items():
        if key not in forward:
            continue
        value = forward[key]
        same = enum_key(value) == enum_key(neutral) if isinstance(neutral, str) else value == neutral
        if not same:
            reader.refuse(f"{_PATH}.{key}", f"{value!r} is not supported ({reason}); only {neutral!r} is")


def _read_dac(forward: dict[str, Any], reader: Reader) -> dict[str, Any]:
    inp_res = reader.number(forward, "inp_res", _PATH, FORWARD_DEFAULTS["inp_res"])
    inp_bound = reader.number(forward, "inp_bound", _PATH, FORWARD_DEFAULTS["inp_bound"])
    management = enum_key(forward.get("noise_management", FORWARD_DEFAULTS["noise_management"]))
    dac: dict[str, Any] = {"bits": bits_from_resolution(inp_res, f"{_PATH}.inp_res", reader), "bound": inp_bound}
    if inp_bound <= 0:
        reader.refuse(f"{_PATH}.inp_bound", f"{inp_bound:g}: the input bound must be positive")
        dac["bound"] = 1.0
    if management == "absmax":
        dac.update(bound_mode="calibrated", calibration_percentile=100.0)
        reader.notes.append(
            "forward.noise_management ABS_MAX scales every input vector by its own max |x|; the profile's nearest "
            "form is a DAC bound calibrated per layer from data at the 100th percentile of |x|"
        )
    elif management == "none":
        dac["bound_mode"] = "fixed"
    else:
        reader.refuse(
            f"{_PATH}.noise_management",
            f"{forward.get('noise_management')!r}: only ABS_MAX (a calibrated DAC bound) and NONE (a fixed bound) "
            "have a profile form",
        )
    return dac


def _read_adc(forward: dict[str, Any], reader: Reader) -> dict[str, Any]:
    """``{"adc": ...}``, or ``{}`` (the profile's default) when the ADC is refused."""
    out_res = reader.number(forward, "out_res", _PATH, FORWARD_DEFAULTS["out_res"])
    out_bound = reader.number(forward, "out_bound", _PATH, FORWARD_DEFAULTS["out_bound"])
    if out_bound <= 0 and out_res <= 0:
        reader.notes.append(
            "forward.out_bound and out_res are not positive: no ADC (outputs neither clipped nor quantised)"
        )
        return {"adc": None}
    if out_bound <= 0:
        reader.refuse(f"{_PATH}.out_bound", f"{out_bound:g}: a quantising ADC (out_res > 0) needs a positive bound")
        return {}
    return {"adc": {"bits": bits_from_resolution(out_res, f"{_PATH}.out_res", reader), "bound": out_bound}}


def _check_bound_management(forward: dict[str, Any], reader: Reader) -> None:
    if "bound_management" not in forward:
        reader.notes.append(
            "forward.bound_management is absent; aihwkit's default (ITERATIVE) has no profile form, so it is read "
            "as NONE: outputs beyond the ADC bound clip"
        )
    elif enum_key(forward["bound_management"]) != "none":
        reader.refuse(
            f"{_PATH}.bound_management",
            f"{forward['bound_management']!r}: re-running a product with smaller inputs when the ADC saturates has "
            "no profile form; only NONE (outputs clip at the bound) does",
        )


def _read_periphery_noise(forward: dict[str, Any], reader: Reader) -> list[dict[str, Any]]:
    """The weight_read_noise and output_noise entries."""
    entries: list[dict[str, Any]] = []
    w_noise = reader.number(forward, "w_noise", _PATH, 0.0)
    w_type = enum_key(forward.get("w_noise_type", "NONE"))
    if w_noise < 0:
        reader.refuse(f"{_PATH}.w_noise", f"{w_noise:g}: a noise std cannot be negative")
    elif w_noise > 0 and w_type == "additiveconstant":
        entries.append({"kind": "weight_read_noise", "sigma": w_noise})
    elif w_noise > 0 and w_type != "none":
        reader.refuse(
            f"{_PATH}.w_noise_type",
            f"{forward.get('w_noise_type')!r}: only ADDITIVE_CONSTANT (weight_read_noise, a std in units of w_max) "
            "has a profile kind; PCM_READ's std grows with sqrt(|w|), which none does",
        )
    out_noise = reader.number(forward, "out_noise", _PATH, FORWARD_DEFAULTS["out_noise"])
    if out_noise < 0:
        reader.refuse(f"{_PATH}.out_noise", f"{out_noise:g}: a noise std cannot be negative")
    elif out_noise > 0:
        entries.append({"kind": "output_noise", "sigma": out_noise, "relative_to": "absolute"})
    return entries


def read_mapping(mapping: dict[str, Any] | None, reader: Reader) -> dict[str, Any]:
    """The profile's tile field and its ``mapping`` (``scale``; g_max comes from the noise model)."""
    path = "mapping"
    mapping = mapping or {}
    reader.unknown(mapping, set(MAPPING_DEFAULTS) | MAPPING_TRAINING, path, "mapping (MappingParameter)")
    fields: dict[str, Any] = {"tile": _read_tile(mapping, reader)}
    if not reader.flag(mapping, "digital_bias", path, True):
        reader.refuse(
            f"{path}.digital_bias", "false: a bias on the crossbar has no profile form; profiles add it digitally"
        )
    omega = reader.number(mapping, "weight_scaling_omega", path, MAPPING_DEFAULTS["weight_scaling_omega"])
    columnwise = reader.flag(mapping, "weight_scaling_columnwise", path, False)
    if omega == 0:
        reader.notes.append(
            "mapping.weight_scaling_omega is 0 (no weight remapping): aihwkit's out_noise and out_bound are then "
            "relative to the raw weights, the profile's to weights scaled to max |w| = 1; they agree when max |w| = 1"
        )
    elif not is_close(omega, 1.0):
        reader.refuse(
            f"{path}.weight_scaling_omega",
            f"{omega:g}: profiles scale weights to max |w| = 1 (omega 1.0); another omega rescales every output-referred number",
        )
    fields["mapping"] = {"scale": "per_channel" if columnwise else "per_tensor"}
    for key in sorted(MAPPING_TRAINING & set(mapping)):
        if mapping[key]:
            reader.notes.append(f"mapping.{key} shapes training only; not translated")
    return fields


def _read_tile(mapping: dict[str, Any], reader: Reader) -> dict[str, int] | None:
    rows = reader.number(mapping, "max_input_size", "mapping", MAPPING_DEFAULTS["max_input_size"])
    cols = reader.number(mapping, "max_output_size", "mapping", MAPPING_DEFAULTS["max_output_size"])
    if rows <= 0 and cols <= 0:
        return None
    if rows <= 0 or cols <= 0:
        reader.notes.append(
            "one of mapping.max_input_size/max_output_size is 0 (unlimited): "
            f"read as {_UNLIMITED_TILE}, a profile's largest tile"
        )
    tile = {
        "rows": int(rows) if rows > 0 else _UNLIMITED_TILE,
        "cols": int(cols) if cols > 0 else _UNLIMITED_TILE,
    }
    if tile["rows"] != rows and rows > 0 or tile["cols"] != cols and cols > 0:
        reader.refuse("mapping", "max_input_size and max_output_size must be whole numbers")
    return tile
