"""Profile -> aihwkit settings: :func:`to_aihwkit` and :func:`export_aihwkit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwprofiles.aihwkit_bridge.fields import PCM_Q_COEFFICIENT, PCM_Q_EXPONENT, PCM_Q_MAX, WAN2022_COEFF_DIC
from hwprofiles.aihwkit_bridge.reader import is_close
from hwprofiles.errors import BridgeError
from hwprofiles.profiles import Profile

# The noise kinds aihwkit has a form for.
_SUPPORTED = {
    "pcm_programming",
    "pcm_drift",
    "pcm_read_1f",
    "rram_relaxation",
    "rram_cmo",
    "weight_read_noise",
    "output_noise",
}


def to_aihwkit(profile: Profile) -> dict[str, Any]:
    """The aihwkit ``InferenceRPUConfig`` (as a nested dict) that expresses a profile.

    The dict also holds ``t_inference`` (the profile's ``t_inference_s``), the time to
    pass to aihwkit's ``drift_analog_weights``. Name, description, references, validation,
    the stress flag and entry notes have no aihwkit form; :func:`from_aihwkit` of the result gives back
    the profile up to those and the losses listed in ``docs/aihwkit-bridge.md``.

    Raises:
        BridgeError: the profile holds something aihwkit cannot express (each reason listed).

    >>> import hwprofiles
    >>> to_aihwkit(hwprofiles.load_profile("rram-neurram"))["noise_model"]["type"]
    'ReRamWan2022NoiseModel'
    """
    reasons: list[str] = []
    if profile.placement != "matmul":
        reasons.append(f"placement {profile.placement}: aihwkit adds noise inside analog tiles only")
    if profile.noise_scale != 1:
        reasons.append(f"noise_scale {profile.noise_scale:g}: aihwkit has no global noise scale")
    entries = _entries_by_kind(profile, reasons)
    forward = _forward(profile, entries, reasons)
    noise_model, compensation = _noise_model(profile, entries, reasons)
    if reasons:
        raise BridgeError(
            f"profile '{profile.name}' cannot be written as aihwkit settings:\n" + "\n".join(reasons), reasons
        )
    return {
        "type": "InferenceRPUConfig",
        "forward": forward,
        "mapping": _mapping(profile),
        "noise_model": noise_model,
        "drift_compensation": {"type": "GlobalDriftCompensation"} if compensation else None,
        "t_inference": profile.t_inference_s,
    }


def _entries_by_kind(profile: Profile, reasons: list[str]) -> dict[str, Any]:
    """The profile's entries by kind; aihwkit holds one of each, and one device model."""
    entries: dict[str, Any] = {}
    for entry in profile.noise:
        if entry.kind not in _SUPPORTED:
            reasons.append(f"noise kind {entry.kind}: aihwkit has no such inference noise")
        elif entry.kind in entries:
            reasons.append(f"noise kind {entry.kind} appears twice: aihwkit holds one of each")
        entries[entry.kind] = entry
    families = {k.split("_")[0] for k in entries if k.startswith(("pcm_", "rram_"))}
    device_kinds = [k for k in entries if k.startswith(("pcm_", "rram_"))]
    if len(families) > 1 or ("rram_relaxation" in entries and "rram_cmo" in entries):
        reasons.append(f"{', '.join(device_kinds)}: aihwkit takes one device noise model")
    return entries


def resolution(bits: int | None) -> float:
    """aihwkit's resolution of a ``bits``-bit converter (``2^b - 2`` steps); -1 (none) for None."""
    if bits is None:
        return -1.0
    return 1.0 / (2**bits - 2)


def _forward(profile: Profile, entries: dict[str, Any], reasons: list[str]) -> dict[str, Any]:
    """The ``forward`` IOParameters: DAC, ADC, weight read noise and output noise."""
    dac, adc = profile.dac, profile.adc
    if dac is None and adc is None and not any(k in entries for k in ("weight_read_noise", "output_noise")):
        return {"is_perfect": True}
    forward: dict[str, Any] = {"is_perfect": False}
    if dac is None:
        reasons.append("dac null with an ADC or periphery noise: aihwkit always clips inputs at inp_bound")
    else:
        if dac.bits == 1:
            reasons.append("dac.bits 1: aihwkit's 2^b - 2 steps would be 0")
        forward.update(
            inp_res=resolution(dac.bits),
            inp_bound=dac.bound,
            noise_management="ABS_MAX" if dac.bound_mode == "calibrated" else "NONE",
        )
    if adc is None:
        forward.update(out_res=-1.0, out_bound=0.0)
    else:
        if adc.per_row:
            reasons.append("adc.per_row: aihwkit's out_bound does not grow with the rows used")
        if adc.bound_mode == "calibrated":
            reasons.append("adc.bound_mode calibrated: aihwkit's ADC always spans out_bound")
        if adc.bits == 1:
            reasons.append("adc.bits 1: aihwkit's 2^b - 2 steps would be 0")
        forward.update(out_res=resolution(adc.bits), out_bound=adc.bound)
    forward["bound_management"] = "NONE"
    out_noise = 0.0
    if "output_noise" in entries:
        e = entries["output_noise"]
        if e.relative_to == "absolute":
            out_noise = e.sigma
        elif adc is not None:
            out_noise = e.sigma * adc.bound
        else:
            reasons.append("output_noise relative to out_bound without an ADC: no bound to be relative to")
    forward["out_noise"] = out_noise
    if "weight_read_noise" in entries:
        forward.update(w_noise=entries["weight_read_noise"].sigma, w_noise_type="ADDITIVE_CONSTANT")
    else:
        forward.update(w_noise=0.0, w_noise_type="NONE")
    return forward


def _mapping(profile: Profile) -> dict[str, Any]:
    tile = profile.tile
    return {
        "max_input_size": tile.rows if tile else 0,
        "max_output_size": tile.cols if tile else 0,
        "digital_bias": True,
        "weight_scaling_omega": 1.0,
        "weight_scaling_columnwise": profile.mapping.scale == "per_channel",
    }


def _noise_model(profile: Profile, entries: dict[str, Any], reasons: list[str]) -> tuple[dict[str, Any] | None, bool]:
    """The device noise model, and whether global drift compensation is on."""
    g_max = profile.mapping.g_max_us
    if any(k.startswith("pcm_") for k in entries):
        return _pcm_model(entries, g_max, reasons)
    if "rram_relaxation" in entries:
        if not any(is_close(profile.t_inference_s, t) for t in WAN2022_COEFF_DIC):
            reasons.append(
                f"t_inference_s {profile.t_inference_s:g} with rram_relaxation: aihwkit's model is defined at 1, 86400, 172800 s only"
            )
        return {
            "type": "ReRamWan2022NoiseModel",
            "g_max": g_max,
            "noise_scale": 1.0,
            "coeff_g_max_reference": entries["rram_relaxation"].g_max_ref_us,
        }, False
    if "rram_cmo" in entries:
        e = entries["rram_cmo"]
        return {
            "type": "ReRamCMONoiseModel",
            "g_max": g_max,
            "g_min": 0.0,
            "coeff_dict": {2.0: [e.a * g_max, e.b]},
            "acceptance_range": 2.0,
            "prog_noise_scale": 1.0,
            "drift_scale": 0.0,
            "read_noise_scale": 0.0,
        }, False
    return None, False


def _pcm_model(entries: dict[str, Any], g_max: float, reasons: list[str]) -> tuple[dict[str, Any], bool]:
    model: dict[str, Any] = {"type": "PCMLikeNoiseModel", "g_max": g_max}
    prog = entries.get("pcm_programming")
    if prog is None:
        model["prog_noise_scale"] = 0.0
    else:
        model.update(
            prog_coeff=list(prog.coefficients_us), prog_coeff_g_max_reference=prog.g_max_ref_us, prog_noise_scale=1.0
        )
    compensation = _pcm_drift(entries.get("pcm_drift"), model, g_max, reasons)
    read = entries.get("pcm_read_1f")
    if read is None:
        model["read_noise_scale"] = 0.0
    else:
        scale = read.q_coefficient / PCM_Q_COEFFICIENT
        if not is_close(read.q_exponent, PCM_Q_EXPONENT) or not is_close(read.q_max, PCM_Q_MAX * scale):
            reasons.append(
                "pcm_read_1f with q_exponent other than 0.65 or q_max/q_coefficient other than 0.2/0.0088: "
                "aihwkit scales the published Q_s as a whole (read_noise_scale)"
            )
        model.update(read_noise_scale=scale, t_read=read.t_read_s)
    return model, compensation


def _pcm_drift(drift: Any, model: dict[str, Any], g_max: float, reasons: list[str]) -> bool:
    """Write a pcm_drift entry into the PCM model; whether it asks for drift compensation."""
    if drift is None:
        model["drift_scale"] = 0.0
        return False
    model["t_0"] = drift.t0_s
    fixed = (drift.nu_mean is not None, drift.nu_std is not None)
    if fixed == (True, True):
        model["type"] = "CustomDriftPCMLikeNoiseModel"
        model["custom_drift_model"] = {
            "g_lst": [0.0, g_max],
            "nu_mean_lst": [drift.nu_mean] * 2,
            "nu_std_lst": [drift.nu_std] * 2,
        }
        model["drift_scale"] = 1.0
    elif fixed == (False, False):
        model["drift_scale"] = 1.0
    else:
        reasons.append(
            "pcm_drift with only one of nu_mean/nu_std fixed: aihwkit takes the published law or a custom table of both"
        )
    return bool(drift.compensation)


def export_aihwkit(names: list[str], to: str | Path, *, force: bool = False) -> tuple[list[Path], list[str]]:
    """Write :func:`to_aihwkit` of profiles as ``<name>.aihwkit.json`` into ``to``, all or nothing.

    Args:
        names: profile names or files; ``all`` takes every profile of the library and
            skips those aihwkit cannot express (their reasons are returned).
        to: the directory (created if missing).
        force: replace files that exist with other content.

    Returns:
        The files written, and one line per profile skipped with its reasons.

    Raises:
        BridgeError: a named profile cannot be expressed; ProfileError: a profile is
            unknown or a file exists (without ``force``). Nothing is written then.

    >>> export_aihwkit(["pcm-joshi2020"], "aihwkit-configs")  # doctest: +SKIP
    """
    from hwprofiles.profiles import load_profile, profile_library
    from hwprofiles.profiles.install import commit_files, plan_writes

    everything = "all" in names
    wanted = list(profile_library()) if everything else list(dict.fromkeys(names))
    target = Path(to)
    texts: dict[Path, str] = {}
    skipped: list[str] = []
    problems: list[str] = []
    for name in wanted:
        profile = load_profile(name)
        try:
            config = to_aihwkit(profile)
        except BridgeError as exc:
            if everything:
                skipped.append(f"skipped {profile.name}: " + "; ".join(exc.reasons))
            else:
                problems.append(str(exc))
            continue
        texts[target / f"{profile.name}.aihwkit.json"] = json.dumps(config, indent=2) + "\n"
    files, replace, unchanged = plan_writes(texts, force, problems)
    if problems:
        raise BridgeError("nothing was exported:\n" + "\n".join(problems), problems)
    return sorted(commit_files(files, replace) + unchanged), skipped
