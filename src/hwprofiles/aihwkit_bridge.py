"""Translate IBM aihwkit inference settings into hardware profiles, and back.

aihwkit describes an analog inference tile with an ``InferenceRPUConfig``: the
periphery (``forward``: DAC, ADC, output and weight noise), the tiling and weight
scaling (``mapping``), a device noise model (``noise_model``) and drift
compensation. :func:`from_aihwkit` reads such a configuration written out as a
nested dict (JSON or YAML, e.g. from ``dataclasses.asdict``) and builds the profile
that expresses it; :func:`to_aihwkit` writes a profile in those terms. aihwkit need
not be installed: only the dict is read.

Every field is either translated, checked to be at a value with no effect, or
refused with a reason; with ``lenient=True`` refused fields are dropped and listed
as warnings instead. Fields that translate with a rounding or a documented
difference of behaviour are listed as notes. ``docs/aihwkit-bridge.md`` holds the
whole table and the reasons.

    >>> from hwprofiles.aihwkit_bridge import from_aihwkit, to_aihwkit
    >>> import hwprofiles
    >>> config = to_aihwkit(hwprofiles.load_profile("pcm-joshi2020"))
    >>> config["noise_model"]["type"]
    'PCMLikeNoiseModel'
    >>> from_aihwkit(config, name="pcm-again").profile.kinds()
    ['pcm_programming', 'pcm_drift', 'pcm_read_1f', 'weight_read_noise', 'output_noise']
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwprofiles.entries.rram import NEURRAM_RELAXATION_US
from hwprofiles.errors import BridgeError, ProfileError, YamlError
from hwprofiles.profiles import Profile, parse_profile
from hwprofiles.untrusted import read_yaml_file

# The published defaults of aihwkit's models and dataclasses, used when a field is absent.
PCM_PROG_COEFF = (0.26348, 1.9650, -1.1731)
PCM_PROG_G_MAX_REF_US = 25.0
PCM_Q_COEFFICIENT = 0.0088
PCM_Q_EXPONENT = 0.65
PCM_Q_MAX = 0.2
PAIR_G_MAX_US = 25.0  # SinglePairConductanceConverter
CMO_G_MAX_US = 88.199997  # SingleDeviceConductanceConverter
CMO_G_MIN_US = 9.0
# ReRamCMONoiseModel's programming-noise coefficients in uS, constant first, keyed by
# acceptance range in percent.
CMO_COEFF_DICT: dict[float, tuple[float, float]] = {
    0.2: (0.00081107, 0.00106879),
    2.0: (0.0112185391, 0.01129027418),
}
CMO_ACCEPTANCE_RANGE = 2e-2
# ReRamWan2022NoiseModel's coefficients, constant first (aihwkit's order).
WAN2022_COEFF_DIC = {t: tuple(reversed(c)) for t, c in NEURRAM_RELAXATION_US.items()}
WAN2022_G_MAX_REF_US = 40.0

FORWARD_DEFAULTS: dict[str, Any] = {
    "is_perfect": False,
    "inp_res": 1 / (2**7 - 2),
    "inp_bound": 1.0,
    "out_res": 1 / (2**9 - 2),
    "out_bound": 12.0,
    "out_noise": 0.06,
    "w_noise": 0.0,
    "w_noise_type": "NONE",
    "noise_management": "ABS_MAX",
}
MAPPING_DEFAULTS: dict[str, Any] = {
    "max_input_size": 512,
    "max_output_size": 512,
    "digital_bias": True,
    "weight_scaling_omega": 0.0,
    "weight_scaling_columnwise": False,
}

# forward fields a profile cannot express: accepted only at the value that turns them off.
_FORWARD_NEUTRAL: dict[str, tuple[Any, str]] = {
    "inp_noise": (0.0, "input noise after the DAC has no profile kind"),
    "inp_sto_round": (False, "the profile's DAC rounds to nearest"),
    "out_sto_round": (False, "the profile's ADC rounds to nearest"),
    "inp_asymmetry": (0.0, "separate positive/negative input passes are not modelled"),
    "out_asymmetry": (0.0, "separate positive/negative input passes are not modelled"),
    "out_noise_std": (0.0, "output noise is the same at every output of a profile's tile"),
    "out_scale": (1.0, "a fixed digital output scale has no profile field"),
    "ir_drop": (0.0, "IR drop is not modelled by any built-in kind"),
    "out_nonlinearity": (0.0, "output non-linearity has no profile kind"),
    "out_nonlinearity_std": (0.0, "output non-linearity has no profile kind"),
    "slope_calibration": (0.0, "output non-linearity has no profile kind"),
    "v_offset_std": (0.0, "voltage offsets have no profile kind"),
    "r_series": (0.0, "series resistance has no profile kind"),
    "w_read_asymmetry_dtod": (0.0, "polarity-dependent reads have no profile kind"),
    "nm_thres": (0.0, "a noise-management threshold clips inputs in a way the profile's DAC does not"),
    "mv_type": ("ONE_PASS", "the profile computes each product in one analog pass"),
    "apply_xdep_pcm_read_noise": (False, "input-dependent PCM read noise has no profile kind"),
}
# forward fields with no effect once the neutral ones above are off.
_FORWARD_INERT = {
    "ir_drop_g_ratio",
    "ir_drop_rs",
    "ir_drop_segments",
    "ir_drop_time_step_resolution_scale",
    "ir_drop_v_read",
    "ir_drop_integration_sum",
    "split_mode_bit_shift",
    "adc_quantization",
    "adc_frequency",
    "xdep_pcm_read_noise_scale",
    "v_offset_w_min",
    "max_bm_factor",
    "max_bm_res",
    "bm_test_negative_bound",
}
_MAPPING_TRAINING = {"weight_scaling_lr_compensation", "learn_out_scaling", "out_scaling_columnwise"}
# InferenceRPUConfig fields that are fixed (init=False) or only shape training.
_TOP_FIXED = {"device", "backward", "update", "tile_class", "tile_array_class", "simulator_tile_class"}
_TOP_TRAINING = {"clip", "remap", "modifier"}
_CONFIG_TYPES = {"InferenceRPUConfig", "TorchInferenceRPUConfig"}
_MODELS = ("PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel", "ReRamWan2022NoiseModel", "ReRamCMONoiseModel")

AIHWKIT_REFERENCE = {
    "citation": "Rasch et al. Using the IBM Analog In-Memory Hardware Acceleration Kit for Neural Network "
    "Training and Inference. APL Machine Learning 1, 041102 (2023).",
    "doi": "10.1063/5.0168089",
    "supports": "The aihwkit inference settings this profile was translated from.",
}
_MODEL_REFERENCES = {
    "pcm": {
        "citation": "Nandakumar et al. Phase-change memory models for deep learning training and inference. ICECS 2019.",
        "supports": "The PCM programming-noise polynomial, drift and 1/f read-noise statistics.",
    },
    "wan2022": {
        "citation": "Wan et al. A compute-in-memory chip based on resistive random-access memory. Nature 608, 504 (2022).",
        "doi": "10.1038/s41586-022-04992-8",
        "supports": "The conductance-relaxation polynomials.",
    },
    "cmo": {
        "citation": "IBM Analog Hardware Acceleration Kit, ReRamCMONoiseModel (inference/noise/reram.py).",
        "supports": "The filamentary HfOx (CMO) programming-noise coefficients.",
    },
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


class _Reader:
    """Collects refusals and notes while walking the dict."""

    def __init__(self) -> None:
        self.refused: list[str] = []
        self.notes: list[str] = []

    def refuse(self, path: str, reason: str) -> None:
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
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.refuse(f"{path}.{key}", f"expected a finite number, got {value!r}")
            return default
        return float(value)

    def flag(self, data: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            self.refuse(f"{path}.{key}", f"expected true or false, got {value!r}")
            return default
        return value

    def unknown(self, data: Mapping[str, Any], known: set[str], path: str, what: str) -> None:
        for key in sorted(set(data) - known):
            self.refuse(
                f"{path}.{key}" if path else key, f"not a field of {what} that this bridge knows; not translated"
            )


def _enum(value: Any) -> str:
    """``WeightNoiseType.ADDITIVE_CONSTANT``, ``ADDITIVE_CONSTANT``, ``AdditiveConstant`` -> ``additiveconstant``."""
    text = str(value).rsplit(".", 1)[-1]
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _type_name(value: Any) -> str:
    return str(value).rsplit(".", 1)[-1] if value is not None else ""


def _close(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


def _bits(res: float, path: str, reader: _Reader) -> int | None:
    """DAC/ADC bits from aihwkit's resolution: ``2^b - 2`` steps over the full range."""
    if res <= 0:
        return None
    steps = 1.0 / res if res <= 1 else res
    if _close(steps, round(steps), 1e-6):
        steps = float(round(steps))
    exact = math.log2(steps + 2)
    bits = max(1, round(exact))
    if not _close(exact, bits, 1e-9):
        reader.notes.append(
            f"{path} = {res:g} means {steps:g} steps, which is not 2^b - 2 for a whole b (b = {exact:.3f}); "
            f"rounded to {bits} bits ({2**bits - 2} steps)"
        )
    if bits > 24:
        reader.refuse(path, f"{steps:g} steps would need {bits} bits; a profile's converter has at most 24")
        return 24
    return bits


def _resolution(bits: int | None) -> float:
    if bits is None:
        return -1.0
    return 1.0 / (2**bits - 2)


# --------------------------------------------------------------------------- aihwkit -> profile


def _read_forward(forward: dict[str, Any] | None, reader: _Reader) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The profile's dac/adc fields and its weight_read_noise/output_noise entries."""
    path = "forward"
    if forward is None:
        reader.refuse(path, "null; give the forward IOParameters (or leave the key out for aihwkit's defaults)")
        forward = {}
    known = set(FORWARD_DEFAULTS) | {"bound_management"} | set(_FORWARD_NEUTRAL) | _FORWARD_INERT
    reader.unknown(forward, known, path, "forward (IOParameters)")
    if reader.flag(forward, "is_perfect", path, False):
        ignored = sorted(k for k in forward if k != "is_perfect" and k in known)
        if ignored:
            reader.notes.append(f"forward.is_perfect is true: {', '.join(ignored)} have no effect and were not read")
        return {"dac": None, "adc": None}, []

    for key, (neutral, reason) in _FORWARD_NEUTRAL.items():
        if key not in forward:
            continue
        value = forward[key]
        same = _enum(value) == _enum(neutral) if isinstance(neutral, str) else value == neutral
        if not same:
            reader.refuse(f"{path}.{key}", f"{value!r} is not supported ({reason}); only {neutral!r} is")

    fields: dict[str, Any] = {}
    inp_res = reader.number(forward, "inp_res", path, FORWARD_DEFAULTS["inp_res"])
    inp_bound = reader.number(forward, "inp_bound", path, FORWARD_DEFAULTS["inp_bound"])
    management = _enum(forward.get("noise_management", FORWARD_DEFAULTS["noise_management"]))
    dac: dict[str, Any] = {"bits": _bits(inp_res, f"{path}.inp_res", reader), "bound": inp_bound}
    if inp_bound <= 0:
        reader.refuse(f"{path}.inp_bound", f"{inp_bound:g}: the input bound must be positive")
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
            f"{path}.noise_management",
            f"{forward.get('noise_management')!r}: only ABS_MAX (a calibrated DAC bound) and NONE (a fixed bound) "
            "have a profile form",
        )
    fields["dac"] = dac

    out_res = reader.number(forward, "out_res", path, FORWARD_DEFAULTS["out_res"])
    out_bound = reader.number(forward, "out_bound", path, FORWARD_DEFAULTS["out_bound"])
    if out_bound <= 0 and out_res <= 0:
        fields["adc"] = None
        reader.notes.append(
            "forward.out_bound and out_res are not positive: no ADC (outputs neither clipped nor quantised)"
        )
    elif out_bound <= 0:
        reader.refuse(f"{path}.out_bound", f"{out_bound:g}: a quantising ADC (out_res > 0) needs a positive bound")
    else:
        fields["adc"] = {"bits": _bits(out_res, f"{path}.out_res", reader), "bound": out_bound}

    management = _enum(forward.get("bound_management", "NONE"))
    if "bound_management" not in forward:
        reader.notes.append(
            "forward.bound_management is absent; aihwkit's default (ITERATIVE) has no profile form, so it is read "
            "as NONE: outputs beyond the ADC bound clip"
        )
    elif management != "none":
        reader.refuse(
            f"{path}.bound_management",
            f"{forward['bound_management']!r}: re-running a product with smaller inputs when the ADC saturates has "
            "no profile form; only NONE (outputs clip at the bound) does",
        )

    entries: list[dict[str, Any]] = []
    w_noise = reader.number(forward, "w_noise", path, 0.0)
    w_type = _enum(forward.get("w_noise_type", "NONE"))
    if w_noise < 0:
        reader.refuse(f"{path}.w_noise", f"{w_noise:g}: a noise std cannot be negative")
    elif w_noise > 0 and w_type == "additiveconstant":
        entries.append({"kind": "weight_read_noise", "sigma": w_noise})
    elif w_noise > 0 and w_type != "none":
        reader.refuse(
            f"{path}.w_noise_type",
            f"{forward.get('w_noise_type')!r}: only ADDITIVE_CONSTANT (weight_read_noise, a std in units of w_max) "
            "has a profile kind; PCM_READ's std grows with sqrt(|w|), which none does",
        )
    out_noise = reader.number(forward, "out_noise", path, FORWARD_DEFAULTS["out_noise"])
    if out_noise < 0:
        reader.refuse(f"{path}.out_noise", f"{out_noise:g}: a noise std cannot be negative")
    elif out_noise > 0:
        entries.append({"kind": "output_noise", "sigma": out_noise, "relative_to": "absolute"})
    return fields, entries


def _read_mapping(mapping: dict[str, Any] | None, reader: _Reader) -> dict[str, Any]:
    path = "mapping"
    mapping = mapping or {}
    reader.unknown(mapping, set(MAPPING_DEFAULTS) | _MAPPING_TRAINING, path, "mapping (MappingParameter)")
    fields: dict[str, Any] = {}
    rows = reader.number(mapping, "max_input_size", path, MAPPING_DEFAULTS["max_input_size"])
    cols = reader.number(mapping, "max_output_size", path, MAPPING_DEFAULTS["max_output_size"])
    if rows <= 0 and cols <= 0:
        fields["tile"] = None
    else:
        unlimited = 1_048_576
        if rows <= 0 or cols <= 0:
            reader.notes.append(
                f"one of mapping.max_input_size/max_output_size is 0 (unlimited): read as {unlimited}, a profile's largest tile"
            )
        tile = {"rows": int(rows) if rows > 0 else unlimited, "cols": int(cols) if cols > 0 else unlimited}
        if tile["rows"] != rows and rows > 0 or tile["cols"] != cols and cols > 0:
            reader.refuse(path, "max_input_size and max_output_size must be whole numbers")
        fields["tile"] = tile
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
    elif not _close(omega, 1.0):
        reader.refuse(
            f"{path}.weight_scaling_omega",
            f"{omega:g}: profiles scale weights to max |w| = 1 (omega 1.0); another omega rescales every output-referred number",
        )
    fields["mapping"] = {"scale": "per_channel" if columnwise else "per_tensor"}
    for key in sorted(_MAPPING_TRAINING & set(mapping)):
        if mapping[key]:
            reader.notes.append(f"mapping.{key} shapes training only; not translated")
    return fields


def _pair_g_max(model: dict[str, Any], path: str, reader: _Reader, default: float) -> float:
    """g_max of a model, from its g_converter when it has one (as aihwkit does)."""
    g_max = model.get("g_max")
    converter = model.get("g_converter")
    if converter is not None:
        if not isinstance(converter, Mapping):
            reader.refuse(f"{path}.g_converter", "expected a mapping with type, g_max, g_min")
            converter = {}
        kind = _type_name(converter.get("type", "SinglePairConductanceConverter"))
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


def _read_pcm(
    model: dict[str, Any], kind: str, path: str, reader: _Reader, compensation: bool
) -> tuple[float, list[dict]]:
    known = {
        "type",
        "prog_coeff",
        "g_max",
        "t_read",
        "t_0",
        "prog_noise_scale",
        "read_noise_scale",
        "drift_scale",
        "prog_coeff_g_max_reference",
        "g_converter",
    }
    if kind == "CustomDriftPCMLikeNoiseModel":
        known.add("custom_drift_model")
    reader.unknown(model, known, path, kind)
    g_max = _pair_g_max(model, path, reader, PAIR_G_MAX_US)
    entries: list[dict[str, Any]] = []

    prog_scale = reader.number(model, "prog_noise_scale", path, 1.0)
    coeff = model.get("prog_coeff")
    if coeff is None:
        coeff, reference = list(PCM_PROG_COEFF), PCM_PROG_G_MAX_REF_US
    else:
        reference = model.get("prog_coeff_g_max_reference") or g_max
        if not isinstance(coeff, list) or not all(
            isinstance(c, (int, float)) and not isinstance(c, bool) for c in coeff
        ):
            reader.refuse(f"{path}.prog_coeff", "expected a list of numbers (constant first)")
            coeff = list(PCM_PROG_COEFF)
        elif not 1 <= len(coeff) <= 3:
            reader.refuse(
                f"{path}.prog_coeff",
                f"{len(coeff)} coefficients: pcm_programming holds a polynomial of degree 2 at most",
            )
            coeff = list(PCM_PROG_COEFF)
        coeff = list(coeff) + [0.0] * (3 - len(coeff))
    if prog_scale < 0:
        reader.refuse(f"{path}.prog_noise_scale", f"{prog_scale:g}: a scale cannot be negative")
    elif prog_scale > 0:
        entries.append(
            {
                "kind": "pcm_programming",
                "coefficients_us": [prog_scale * float(c) for c in coeff],
                "g_max_ref_us": float(reference),
            }
        )
        if prog_scale != 1:
            reader.notes.append(f"{path}.prog_noise_scale {prog_scale:g} is folded into the polynomial's coefficients")

    drift_scale = reader.number(model, "drift_scale", path, 1.0)
    t_0 = reader.number(model, "t_0", path, 20.0)
    drift: dict[str, Any] = {"kind": "pcm_drift", "t0_s": t_0, "compensation": compensation}
    if kind == "CustomDriftPCMLikeNoiseModel":
        custom = model.get("custom_drift_model")
        means, stds = _constant_custom_drift(custom, f"{path}.custom_drift_model", reader)
        if drift_scale < 0:
            reader.refuse(f"{path}.drift_scale", f"{drift_scale:g}: a scale cannot be negative")
        elif drift_scale > 0 and means is not None:
            # |N(m, s)| * k = |N(k m, k s)| for k > 0: the scale folds in exactly.
            drift.update(nu_mean=means * drift_scale, nu_std=stds * drift_scale)
            entries.append(drift)
    elif drift_scale == 1:
        entries.append(drift)
    elif drift_scale != 0:
        reader.refuse(
            f"{path}.drift_scale",
            f"{drift_scale:g}: it multiplies nu, whose mean and spread follow x through mu_nu(x) and s_nu(x); pcm_drift "
            "holds that law unscaled or a constant mean and std, so only 0 (no drift) and 1 translate",
        )
    elif compensation:
        reader.notes.append("drift_compensation is set but drift_scale is 0: nothing drifts, so it was dropped")

    read_scale = reader.number(model, "read_noise_scale", path, 1.0)
    t_read = reader.number(model, "t_read", path, 250e-9)
    if read_scale < 0:
        reader.refuse(f"{path}.read_noise_scale", f"{read_scale:g}: a scale cannot be negative")
    elif read_scale * PCM_Q_MAX > 1:
        reader.refuse(f"{path}.read_noise_scale", f"{read_scale:g}: pcm_read_1f's q_max (0.2 x scale) may be 1 at most")
    elif read_scale > 0:
        # Q_s = min(0.0088 / x^0.65, 0.2) * k = min(0.0088 k / x^0.65, 0.2 k): both limits scale.
        entries.append(
            {
                "kind": "pcm_read_1f",
                "q_coefficient": PCM_Q_COEFFICIENT * read_scale,
                "q_exponent": PCM_Q_EXPONENT,
                "q_max": PCM_Q_MAX * read_scale,
                "t_read_s": t_read,
            }
        )
    return g_max, entries


def _constant_custom_drift(custom: Any, path: str, reader: _Reader) -> tuple[float | None, float | None]:
    if not isinstance(custom, Mapping) or not {"g_lst", "nu_mean_lst", "nu_std_lst"} <= set(custom):
        reader.refuse(path, "expected a mapping with g_lst, nu_mean_lst and nu_std_lst")
        return None, None
    means, stds = custom["nu_mean_lst"], custom["nu_std_lst"]
    try:
        means, stds = [float(m) for m in means], [float(s) for s in stds]
    except (TypeError, ValueError):
        reader.refuse(path, "nu_mean_lst and nu_std_lst must be lists of numbers")
        return None, None
    if not means or not stds or len(set(means)) != 1 or len(set(stds)) != 1:
        reader.refuse(
            path, "nu varies with conductance here; pcm_drift holds the published law or one constant mean and std"
        )
        return None, None
    return means[0], stds[0]


def _read_wan2022(
    model: dict[str, Any], path: str, reader: _Reader, t_inference: float | None
) -> tuple[float, list[dict]]:
    known = {"type", "coeff_dic", "g_max", "noise_scale", "coeff_g_max_reference", "g_converter"}
    reader.unknown(model, known, path, "ReRamWan2022NoiseModel")
    g_max = _pair_g_max(model, path, reader, PAIR_G_MAX_US)
    coeff_dic = model.get("coeff_dic")
    times = set(WAN2022_COEFF_DIC)
    if coeff_dic is not None:
        published = _published_wan2022(coeff_dic)
        if not published:
            reader.refuse(
                f"{path}.coeff_dic",
                "rram_relaxation holds only the published polynomials of Wan et al. 2022 (1 s, 1 day, 2 days)",
            )
        reference = model.get("coeff_g_max_reference") or g_max
    else:
        reference = model.get("coeff_g_max_reference") or WAN2022_G_MAX_REF_US
    if t_inference is not None and not any(_close(t_inference, t) for t in times):
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


def _published_wan2022(coeff_dic: Any) -> bool:
    if not isinstance(coeff_dic, Mapping) or len(coeff_dic) != len(WAN2022_COEFF_DIC):
        return False
    for key, coefficients in coeff_dic.items():
        try:
            t = float(key)
            values = [float(c) for c in coefficients]
        except (TypeError, ValueError):
            return False
        expected = next((c for k, c in WAN2022_COEFF_DIC.items() if _close(k, t)), None)
        if expected is None or len(values) != len(expected) or not all(_close(a, b) for a, b in zip(values, expected)):
            return False
    return True


def _read_cmo(model: dict[str, Any], path: str, reader: _Reader) -> tuple[float, list[dict]]:
    known = {
        "type",
        "coeff_dict",
        "g_max",
        "g_min",
        "prog_noise_scale",
        "read_noise_scale",
        "drift_scale",
        "decay_dict",
        "read_dict",
        "acceptance_range",
    }
    reader.unknown(model, known, path, "ReRamCMONoiseModel")
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
    table: dict[float, tuple[float, float]] = dict(CMO_COEFF_DICT)
    if model.get("coeff_dict") is not None:
        table = {}
        raw = model["coeff_dict"]
        if not isinstance(raw, Mapping):
            reader.refuse(f"{path}.coeff_dict", "expected a mapping of acceptance range -> [constant, slope]")
        else:
            for key, value in raw.items():
                try:
                    values = [float(v) for v in value]
                    table[float(key)] = (values[0], values[1] if len(values) > 1 else 0.0)
                    if len(values) > 2:
                        raise ValueError
                except (TypeError, ValueError, IndexError):
                    reader.refuse(f"{path}.coeff_dict.{key}", "expected [constant, slope] in uS: rram_cmo is linear")
    acceptance = reader.number(model, "acceptance_range", path, CMO_ACCEPTANCE_RANGE)
    if not table:
        return g_max, []
    chosen = next((k for k in table if _close(k, acceptance)), None)
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
    reader = _Reader()
    config = dict(config)
    kind = _type_name(config.get("type", "InferenceRPUConfig"))
    if kind not in _CONFIG_TYPES:
        reader.refuse("type", f"{kind}: only inference configurations ({', '.join(sorted(_CONFIG_TYPES))}) translate")
    known = {"type", "forward", "mapping", "noise_model", "drift_compensation", "pre_post", "t_inference"}
    reader.unknown(config, known | _TOP_FIXED | _TOP_TRAINING, "", "InferenceRPUConfig")
    fixed = sorted(_TOP_FIXED & set(config))
    if fixed:
        reader.notes.append(f"{', '.join(fixed)}: fixed in inference configurations or training only; not read")
    for key in sorted(_TOP_TRAINING & set(config)):
        section = config[key]
        if isinstance(section, Mapping) and _enum(section.get("type", "NONE")) != "none":
            if key == "modifier" and section.get("enable_during_test"):
                reader.refuse(
                    "modifier.enable_during_test",
                    "true: a training-time weight modifier kept at inference has no profile kind",
                )
            else:
                reader.notes.append(
                    f"{key} (type {_type_name(section.get('type'))}) shapes training only; hwprofiles trains under the profile's own noise"
                )
    pre_post = reader.section(config, "pre_post") or {}
    input_range = pre_post.get("input_range") if isinstance(pre_post, Mapping) else None
    if isinstance(input_range, Mapping) and input_range.get("enable"):
        reader.refuse(
            "pre_post.input_range.enable",
            "true: learned input ranges have no profile form (the nearest is dac.bound_mode: calibrated)",
        )

    data: dict[str, Any] = {"name": name}
    forward_fields, periphery = _read_forward(reader.section(config, "forward"), reader)
    data.update(forward_fields)
    mapping_fields = _read_mapping(reader.section(config, "mapping"), reader)
    data.update({k: v for k, v in mapping_fields.items() if k != "mapping"})

    t_inference = None
    if "t_inference" in config:
        t_inference = reader.number(config, "t_inference", "", 1.0)
        if t_inference < 0:
            reader.refuse("t_inference", f"{t_inference:g}: a time cannot be negative")
            t_inference = None
    compensation = _read_compensation(config, reader)

    if isinstance(config.get("noise_model"), str):  # a bare class name
        config["noise_model"] = {"type": config["noise_model"]}
    model = reader.section(config, "noise_model")
    technology, model_key, g_max, device = "generic", None, None, []
    if model is not None:
        if not model:
            model = {"type": "PCMLikeNoiseModel"}
            reader.notes.append("noise_model is absent: aihwkit's default PCMLikeNoiseModel() is taken")
        model_kind = _type_name(model.get("type"))
        if model_kind in ("PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel"):
            technology, model_key = "pcm", "pcm"
            g_max, device = _read_pcm(model, model_kind, "noise_model", reader, compensation)
        elif model_kind == "ReRamWan2022NoiseModel":
            technology, model_key = "rram", "wan2022"
            g_max, device = _read_wan2022(model, "noise_model", reader, t_inference)
        elif model_kind == "ReRamCMONoiseModel":
            technology, model_key = "rram", "cmo"
            g_max, device = _read_cmo(model, "noise_model", reader)
        else:
            reader.refuse(
                "noise_model.type",
                f"{model_kind or '(missing)'}: no profile translation; supported: {', '.join(_MODELS)}",
            )
    if compensation and not any(e["kind"] == "pcm_drift" for e in device) and model_key != "pcm":
        reader.notes.append("drift_compensation is set but nothing in the profile drifts; it was dropped")

    mapping = dict(mapping_fields["mapping"])
    if g_max is not None:
        mapping["g_max_us"] = g_max
    data["mapping"] = mapping
    data["technology"] = technology
    if t_inference is not None:
        data["t_inference_s"] = t_inference
    data["noise"] = device + periphery

    warnings: list[str] = []
    if reader.refused:
        if not lenient:
            raise BridgeError(
                f"{source}: {len(reader.refused)} field(s) cannot be translated into a profile "
                "(pass --lenient to drop them):\n" + "\n".join(reader.refused),
                reader.refused,
            )
        warnings = [f"{r} (dropped)" for r in reader.refused]
    data["description"] = _describe(source, model_key, reader.notes, warnings)
    data["references"] = [AIHWKIT_REFERENCE] + ([_MODEL_REFERENCES[model_key]] if model_key else [])
    profile = parse_profile(data, source=f"{source} (translated)")
    return Translation(profile=profile, notes=reader.notes, warnings=warnings)


def _read_compensation(config: Mapping[str, Any], reader: _Reader) -> bool:
    if "drift_compensation" not in config:
        return True  # aihwkit's default: GlobalDriftCompensation
    value = config["drift_compensation"]
    if value is None:
        return False
    kind = _type_name(value.get("type") if isinstance(value, Mapping) else value)
    if kind != "GlobalDriftCompensation":
        reader.refuse(
            "drift_compensation", f"{kind or value!r}: only GlobalDriftCompensation (pcm_drift.compensation) translates"
        )
        return False
    if isinstance(value, Mapping):
        reader.unknown(value, {"type"}, "drift_compensation", "GlobalDriftCompensation")
    return True


def _describe(source: str, model_key: str | None, notes: list[str], warnings: list[str]) -> str:
    what = {
        "pcm": "PCM-like noise model",
        "wan2022": "NeuRRAM (Wan 2022) ReRAM model",
        "cmo": "filamentary HfOx (CMO) ReRAM model",
        None: "no device noise model",
    }[model_key]
    text = f"Translated from aihwkit inference settings ({source}): {what}."
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
    try:
        data = read_yaml_file(path)  # JSON is YAML; a safe loader, within limits (docs/security.md)
    except YamlError as exc:
        raise BridgeError(str(exc)) from None
    if name is None:
        name = re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower()).strip("-._") or "aihwkit-import"
    try:
        return from_aihwkit(data if data is not None else {}, name=name, lenient=lenient, source=str(path))
    except ProfileError as exc:
        raise BridgeError(str(exc)) from None


# --------------------------------------------------------------------------- profile -> aihwkit


def to_aihwkit(profile: Profile) -> dict[str, Any]:
    """The aihwkit ``InferenceRPUConfig`` (as a nested dict) that expresses a profile.

    The dict also holds ``t_inference`` (the profile's ``t_inference_s``), the time to
    pass to aihwkit's ``drift_analog_weights``. Name, description, references and
    entry notes have no aihwkit form; :func:`from_aihwkit` of the result gives back
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
    entries: dict[str, Any] = {}
    supported = {
        "pcm_programming",
        "pcm_drift",
        "pcm_read_1f",
        "rram_relaxation",
        "rram_cmo",
        "weight_read_noise",
        "output_noise",
    }
    for entry in profile.noise:
        if entry.kind not in supported:
            reasons.append(f"noise kind {entry.kind}: aihwkit has no such inference noise")
        elif entry.kind in entries:
            reasons.append(f"noise kind {entry.kind} appears twice: aihwkit holds one of each")
        entries[entry.kind] = entry
    families = {k.split("_")[0] for k in entries if k.startswith(("pcm_", "rram_"))}
    device_kinds = [k for k in entries if k.startswith(("pcm_", "rram_"))]
    if len(families) > 1 or ("rram_relaxation" in entries and "rram_cmo" in entries):
        reasons.append(f"{', '.join(device_kinds)}: aihwkit takes one device noise model")

    forward: dict[str, Any]
    dac, adc = profile.dac, profile.adc
    periphery = [k for k in ("weight_read_noise", "output_noise") if k in entries]
    if dac is None and adc is None and not periphery:
        forward = {"is_perfect": True}
    else:
        forward = {"is_perfect": False}
        if dac is None:
            reasons.append("dac null with an ADC or periphery noise: aihwkit always clips inputs at inp_bound")
        else:
            if dac.bits == 1:
                reasons.append("dac.bits 1: aihwkit's 2^b - 2 steps would be 0")
            forward.update(
                inp_res=_resolution(dac.bits),
                inp_bound=dac.bound,
                noise_management="ABS_MAX" if dac.bound_mode == "calibrated" else "NONE",
            )
        if adc is None:
            forward.update(out_res=-1.0, out_bound=0.0)
        else:
            if adc.per_row:
                reasons.append("adc.per_row: aihwkit's out_bound does not grow with the rows used")
            if adc.bits == 1:
                reasons.append("adc.bits 1: aihwkit's 2^b - 2 steps would be 0")
            forward.update(out_res=_resolution(adc.bits), out_bound=adc.bound)
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

    tile = profile.tile
    mapping = {
        "max_input_size": tile.rows if tile else 0,
        "max_output_size": tile.cols if tile else 0,
        "digital_bias": True,
        "weight_scaling_omega": 1.0,
        "weight_scaling_columnwise": profile.mapping.scale == "per_channel",
    }
    g_max = profile.mapping.g_max_us
    noise_model: dict[str, Any] | None = None
    compensation = False
    if any(k.startswith("pcm_") for k in entries):
        noise_model, compensation = _pcm_model(entries, g_max, reasons)
    elif "rram_relaxation" in entries:
        e = entries["rram_relaxation"]
        noise_model = {
            "type": "ReRamWan2022NoiseModel",
            "g_max": g_max,
            "noise_scale": 1.0,
            "coeff_g_max_reference": e.g_max_ref_us,
        }
        if not any(_close(profile.t_inference_s, t) for t in WAN2022_COEFF_DIC):
            reasons.append(
                f"t_inference_s {profile.t_inference_s:g} with rram_relaxation: aihwkit's model is defined at 1, 86400, 172800 s only"
            )
    elif "rram_cmo" in entries:
        e = entries["rram_cmo"]
        noise_model = {
            "type": "ReRamCMONoiseModel",
            "g_max": g_max,
            "g_min": 0.0,
            "coeff_dict": {2.0: [e.a * g_max, e.b]},
            "acceptance_range": 2.0,
            "prog_noise_scale": 1.0,
            "drift_scale": 0.0,
            "read_noise_scale": 0.0,
        }
    if reasons:
        raise BridgeError(
            f"profile '{profile.name}' cannot be written as aihwkit settings:\n" + "\n".join(reasons), reasons
        )
    return {
        "type": "InferenceRPUConfig",
        "forward": forward,
        "mapping": mapping,
        "noise_model": noise_model,
        "drift_compensation": {"type": "GlobalDriftCompensation"} if compensation else None,
        "t_inference": profile.t_inference_s,
    }


def _pcm_model(entries: dict[str, Any], g_max: float, reasons: list[str]) -> tuple[dict[str, Any], bool]:
    model: dict[str, Any] = {"type": "PCMLikeNoiseModel", "g_max": g_max}
    prog = entries.get("pcm_programming")
    if prog is None:
        model["prog_noise_scale"] = 0.0
    else:
        model.update(
            prog_coeff=list(prog.coefficients_us), prog_coeff_g_max_reference=prog.g_max_ref_us, prog_noise_scale=1.0
        )
    drift = entries.get("pcm_drift")
    compensation = False
    if drift is None:
        model["drift_scale"] = 0.0
    else:
        model["t_0"] = drift.t0_s
        compensation = drift.compensation
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
    read = entries.get("pcm_read_1f")
    if read is None:
        model["read_noise_scale"] = 0.0
    else:
        scale = read.q_coefficient / PCM_Q_COEFFICIENT
        if not _close(read.q_exponent, PCM_Q_EXPONENT) or not _close(read.q_max, PCM_Q_MAX * scale):
            reasons.append(
                "pcm_read_1f with q_exponent other than 0.65 or q_max/q_coefficient other than 0.2/0.0088: "
                "aihwkit scales the published Q_s as a whole (read_noise_scale)"
            )
        model.update(read_noise_scale=scale, t_read=read.t_read_s)
    return model, compensation


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
    import json

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
                continue
            problems.append(str(exc))
            continue
        texts[target / f"{profile.name}.aihwkit.json"] = json.dumps(config, indent=2) + "\n"
    files, replace, unchanged = plan_writes(texts, force, problems)
    if problems:
        raise BridgeError("nothing was exported:\n" + "\n".join(problems), problems)
    return sorted(commit_files(files, replace) + unchanged), skipped
