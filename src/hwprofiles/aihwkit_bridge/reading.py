"""aihwkit settings -> profile: :func:`from_aihwkit` and :func:`read_aihwkit_file`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwprofiles.aihwkit_bridge.fields import CONFIG_TYPES, NOISE_MODELS, TOP_FIELDS, TOP_FIXED, TOP_TRAINING
from hwprofiles.aihwkit_bridge.pcm import read_pcm
from hwprofiles.aihwkit_bridge.periphery import read_forward, read_mapping
from hwprofiles.aihwkit_bridge.reader import Reader, enum_key, type_name
from hwprofiles.aihwkit_bridge.rram import read_cmo, read_wan2022
from hwprofiles.errors import BridgeError, ProfileError
from hwprofiles.profiles import Profile, parse_profile
from hwprofiles.untrusted import read_yaml_file

AIHWKIT_REFERENCE = {
    "citation": "Rasch et al. Using the IBM Analog In-Memory Hardware Acceleration Kit for Neural Network "
    "Training and Inference. APL Machine Learning 1, 041102 (2023).",
    "doi": "10.1063/5.0168089",
    "supports": "The aihwkit inference settings this profile was translated from.",
}
# Per noise model: what the description calls it, and the reference of its numbers.
_MODEL_INFO: dict[str | None, tuple[str, dict[str, str] | None]] = {
    "pcm": (
        "PCM-like noise model",
        {
            "citation": "Nandakumar et al. Phase-change memory models for deep learning training and inference. "
            "ICECS 2019.",
            "supports": "The PCM programming-noise polynomial, drift and 1/f read-noise statistics.",
        },
    ),
    "wan2022": (
        "NeuRRAM (Wan 2022) ReRAM model",
        {
            "citation": "Wan et al. A compute-in-memory chip based on resistive random-access memory. "
            "Nature 608, 504 (2022).",
            "doi": "10.1038/s41586-022-04992-8",
            "supports": "The conductance-relaxation polynomials.",
        },
    ),
    "cmo": (
        "filamentary HfOx (CMO) ReRAM model",
        {
            "citation": "IBM Analog Hardware Acceleration Kit, ReRamCMONoiseModel (inference/noise/reram.py).",
            "supports": "The filamentary HfOx (CMO) programming-noise coefficients.",
        },
    ),
    None: ("no device noise model", None),
}


@dataclass
class Translation:
    """A profile translated from aihwkit settings, with what the translation did.

    Attributes:
        profile: the profile.
        notes: how fields were read where it is not one to one (roundings, defaults
            taken, documented differences of behaviour).
        warnings: fields refused and dropped because ``lenient`` was set.
    """

    profile: Profile
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Device:
    """What the noise model gives the profile."""

    technology: str = "generic"
    model: str | None = None  # a key of _MODEL_INFO
    g_max_us: float | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)


def from_aihwkit(
    config: Mapping[str, Any], *, name: str, lenient: bool = False, source: str = "aihwkit settings"
) -> Translation:
    """The profile that expresses aihwkit inference settings.

    Args:
        config: an ``InferenceRPUConfig`` as a nested dict (``forward``, ``mapping``,
            ``noise_model`` with a ``type``, ``drift_compensation``, ...), optionally
            with ``t_inference``: the time, in s, that ``drift_analog_weights`` is given.
            Absent fields take aihwkit's defaults.
        name: the profile's name.
        lenient: drop refused fields (listed in ``warnings``) instead of raising.
        source: where the settings come from, for messages and the description.

    Returns:
        The profile, with notes on how fields were read.

    Raises:
        BridgeError: some fields cannot be expressed (each listed with its reason),
            unless ``lenient``.
        ProfileError: the translated profile is invalid (a number out of a field's bounds).

    >>> t = from_aihwkit({"forward": {"out_noise": 0.04}, "noise_model": None}, name="periphery-only")
    >>> t.profile.kinds()
    ['output_noise']
    """
    if not isinstance(config, Mapping):
        raise BridgeError(f"{source}: expected a mapping of InferenceRPUConfig fields, got {type(config).__name__}")
    reader = Reader()
    config = dict(config)
    _read_top_level(config, reader)
    forward_fields, periphery = read_forward(reader.section(config, "forward"), reader)
    mapping_fields = read_mapping(reader.section(config, "mapping"), reader)
    t_inference = _read_t_inference(config, reader)
    compensation = _read_compensation(config, reader)
    device = _read_noise_model(config, reader, t_inference, compensation)
    if compensation and not any(e["kind"] == "pcm_drift" for e in device.entries) and device.model != "pcm":
        reader.notes.append("drift_compensation is set but nothing in the profile drifts; it was dropped")
    if any(e["kind"] == "pcm_drift" and e["compensation"] for e in device.entries):
        reader.notes.append(
            "drift_compensation GlobalDriftCompensation: pcm_drift.compensation takes its gain from the summed "
            "conductance (g+ plus g-) after programming and at t, not from the mean |output| of a read through "
            "the periphery; the gains agree where the weights' drift is uniform, and differ most where "
            "the reference read is noisy or the rows sum to about zero"
        )
    mapping = dict(mapping_fields.pop("mapping"))
    if device.g_max_us is not None:
        mapping["g_max_us"] = device.g_max_us
    data: dict[str, Any] = {"name": name, **forward_fields, **mapping_fields, "mapping": mapping}
    data.update(technology=device.technology, noise=device.entries + periphery)
    if t_inference is not None:
        data["t_inference_s"] = t_inference
    warnings = _refusals(reader, lenient, source)
    description, reference = _MODEL_INFO[device.model]
    data["description"] = _describe(source, description, reader.notes, warnings)
    data["references"] = [AIHWKIT_REFERENCE] + ([reference] if reference else [])
    profile = parse_profile(data, source=f"{source} (translated)")
    return Translation(profile=profile, notes=reader.notes, warnings=warnings)


def _read_top_level(config: dict[str, Any], reader: Reader) -> None:
    """The configuration's type, and the fields that shape training or are fixed: checked, not translated."""
    kind = type_name(config.get("type", "InferenceRPUConfig"))
    if kind not in CONFIG_TYPES:
        reader.refuse("type", f"{kind}: only inference configurations ({', '.join(sorted(CONFIG_TYPES))}) translate")
    reader.unknown(config, TOP_FIELDS | TOP_FIXED | TOP_TRAINING, "", "InferenceRPUConfig")
    fixed = sorted(TOP_FIXED & set(config))
    if fixed:
        reader.notes.append(f"{', '.join(fixed)}: fixed in inference configurations or training only; not read")
    for key in sorted(TOP_TRAINING & set(config)):
        section = config[key]
        if isinstance(section, Mapping) and enum_key(section.get("type", "NONE")) != "none":
            if key == "modifier" and section.get("enable_during_test"):
                reader.refuse(
                    "modifier.enable_during_test",
                    "true: a training-time weight modifier kept at inference has no profile kind",
                )
            else:
                reader.notes.append(
                    f"{key} (type {type_name(section.get('type'))}) shapes training only; hwprofiles trains under the profile's own noise"
                )
    pre_post = reader.section(config, "pre_post") or {}
    input_range = pre_post.get("input_range") if isinstance(pre_post, Mapping) else None
    if isinstance(input_range, Mapping) and input_range.get("enable"):
        reader.refuse(
            "pre_post.input_range.enable",
            "true: learned input ranges have no profile form (the nearest is dac.bound_mode: calibrated)",
        )


def _read_t_inference(config: Mapping[str, Any], reader: Reader) -> float | None:
    if "t_inference" not in config:
        return None
    t_inference = reader.number(config, "t_inference", "", 1.0)
    if t_inference < 0:
        reader.refuse("t_inference", f"{t_inference:g}: a time cannot be negative")
        return None
    return t_inference


def _read_compensation(config: Mapping[str, Any], reader: Reader) -> bool:
    if "drift_compensation" not in config:
        return True  # aihwkit's default: GlobalDriftCompensation
    value = config["drift_compensation"]
    if value is None:
        return False
    kind = type_name(value.get("type") if isinstance(value, Mapping) else value)
    if kind != "GlobalDriftCompensation":
        reader.refuse(
            "drift_compensation", f"{kind or value!r}: only GlobalDriftCompensation (pcm_drift.compensation) translates"
        )
        return False
    if isinstance(value, Mapping):
        reader.unknown(value, {"type"}, "drift_compensation", "GlobalDriftCompensation")
    return True


def _read_noise_model(config: dict[str, Any], reader: Reader, t_inference: float | None, compensation: bool) -> _Device:
    if isinstance(config.get("noise_model"), str):  # a bare class name
        config["noise_model"] = {"type": config["noise_model"]}
    model = reader.section(config, "noise_model")
    if model is None:
        return _Device()
    if not model:
        model = {"type": "PCMLikeNoiseModel"}
        reader.notes.append("noise_model is absent: aihwkit's default PCMLikeNoiseModel() is taken")
    kind = type_name(model.get("type"))
    path = "noise_model"
    if kind in ("PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel"):
        return _Device("pcm", "pcm", *read_pcm(model, kind, path, reader, compensation))
    if kind == "ReRamWan2022NoiseModel":
        return _Device("rram", "wan2022", *read_wan2022(model, path, reader, t_inference))
    if kind == "ReRamCMONoiseModel":
        return _Device("rram", "cmo", *read_cmo(model, path, reader))
    reader.refuse(
        path + ".type", f"{kind or '(missing)'}: no profile translation; supported: {', '.join(NOISE_MODELS)}"
    )
    return _Device()


def _refusals(reader: Reader, lenient: bool, source: str) -> list[str]:
    """The warnings for refused fields when ``lenient``; else any refusal raises."""
    if not reader.refused:
        return []
    if not lenient:
        raise BridgeError(
            f"{source}: {len(reader.refused)} field(s) cannot be translated into a profile "
            "(pass --lenient to drop them):\n" + "\n".join(reader.refused),
            reader.refused,
        )
    return [f"{r} (dropped)" for r in reader.refused]


def _describe(source: str, model: str, notes: list[str], warnings: list[str]) -> str:
    text = f"Translated from aihwkit inference settings ({source}): {model}."
    if notes:
        text += " Translation notes: " + "; ".join(notes) + "."
    if warnings:
        text += " Dropped (not expressible): " + "; ".join(warnings) + "."
    return text if len(text) <= 5000 else text[:4990] + " [...]"


def read_aihwkit_file(path: str | Path, *, name: str | None = None, lenient: bool = False) -> Translation:
    """:func:`from_aihwkit` of a JSON or YAML file; the name defaults to the file's stem.

    Raises:
        BridgeError: the file cannot be read, or fields cannot be translated.

    >>> read_aihwkit_file("rpu_config.json", name="lab-pcm")  # doctest: +SKIP
    """
    path = Path(path)
    data = read_yaml_file(path, error=BridgeError)  # JSON is YAML; a safe loader, within limits (docs/security.md)
    if name is None:
        name = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._") or "aihwkit-import"
    try:
        return from_aihwkit(data if data is not None else {}, name=name, lenient=lenient, source=str(path))
    except ProfileError as exc:
        raise BridgeError(str(exc)) from None
