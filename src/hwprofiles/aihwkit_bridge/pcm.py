"""aihwkit's PCM-like noise models as pcm_programming, pcm_drift and pcm_read_1f entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hwprofiles.aihwkit_bridge.fields import (
    PAIR_G_MAX_US,
    PCM_FIELDS,
    PCM_PROG_COEFF,
    PCM_PROG_G_MAX_REF_US,
    PCM_Q_COEFFICIENT,
    PCM_Q_EXPONENT,
    PCM_Q_MAX,
    PCM_T_0_S,
    PCM_T_READ_S,
)
from hwprofiles.aihwkit_bridge.reader import Reader, pair_g_max

CUSTOM_DRIFT = "CustomDriftPCMLikeNoiseModel"


def read_pcm(
    model: dict[str, Any], kind: str, path: str, reader: Reader, compensation: bool
) -> tuple[float, list[dict[str, Any]]]:
    """g_max and the entries of a ``PCMLikeNoiseModel`` or ``CustomDriftPCMLikeNoiseModel``."""
    reader.unknown(model, PCM_FIELDS | ({"custom_drift_model"} if kind == CUSTOM_DRIFT else set()), path, kind)
    g_max = pair_g_max(model, path, reader, PAIR_G_MAX_US)
    entries = [
        *_read_programming(model, path, reader, g_max),
        *_read_drift(model, kind, path, reader, compensation),
        *_read_1f(model, path, reader),
    ]
    return g_max, entries


def _read_programming(model: dict[str, Any], path: str, reader: Reader, g_max: float) -> list[dict[str, Any]]:
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
        return []
    if prog_scale == 0:
        return []
    if prog_scale != 1:
        reader.notes.append(f"{path}.prog_noise_scale {prog_scale:g} is folded into the polynomial's coefficients")
    return [
        {
            "kind": "pcm_programming",
            "coefficients_us": [prog_scale * float(c) for c in coeff],
            "g_max_ref_us": float(reference),
        }
    ]


def _read_drift(
    model: dict[str, Any], kind: str, path: str, reader: Reader, compensation: bool
) -> list[dict[str, Any]]:
    drift_scale = reader.number(model, "drift_scale", path, 1.0)
    t_0 = reader.number(model, "t_0", path, PCM_T_0_S)
    drift: dict[str, Any] = {"kind": "pcm_drift", "t0_s": t_0, "compensation": compensation}
    if kind == CUSTOM_DRIFT:
        constant = constant_custom_drift(model.get("custom_drift_model"), f"{path}.custom_drift_model", reader)
        if drift_scale < 0:
            reader.refuse(f"{path}.drift_scale", f"{drift_scale:g}: a scale cannot be negative")
        elif drift_scale > 0 and constant is not None:
            # |N(m, s)| * k = |N(k m, k s)| for k > 0: the scale folds in exactly.
            mean, std = constant
            return [{**drift, "nu_mean": mean * drift_scale, "nu_std": std * drift_scale}]
        return []
    if drift_scale == 1:
        return [drift]
    if drift_scale != 0:
        reader.refuse(
            f"{path}.drift_scale",
            f"{drift_scale:g}: it multiplies nu, whose mean and spread follow x through mu_nu(x) and s_nu(x); pcm_drift "
            "holds that law unscaled or a constant mean and std, so only 0 (no drift) and 1 translate",
        )
    elif compensation:
        reader.notes.append("drift_compensation is set but drift_scale is 0: nothing drifts, so it was dropped")
    return []


def constant_custom_drift(custom: Any, path: str, reader: Reader) -> tuple[float, float] | None:
    """The one mean and std of nu a custom drift table holds, or ``None`` (refused) when nu varies."""
    if not isinstance(custom, Mapping) or not {"g_lst", "nu_mean_lst", "nu_std_lst"} <= set(custom):
        reader.refuse(path, "expected a mapping with g_lst, nu_mean_lst and nu_std_lst")
        return None
    try:
        means = [float(m) for m in custom["nu_mean_lst"]]
        stds = [float(s) for s in custom["nu_std_lst"]]
    except (TypeError, ValueError):
        reader.refuse(path, "nu_mean_lst and nu_std_lst must be lists of numbers")
        return None
    if not means or not stds or len(set(means)) != 1 or len(set(stds)) != 1:
        reader.refuse(
            path, "nu varies with conductance here; pcm_drift holds the published law or one constant mean and std"
        )
        return None
    return means[0], stds[0]


def _read_1f(model: dict[str, Any], path: str, reader: Reader) -> list[dict[str, Any]]:
    read_scale = reader.number(model, "read_noise_scale", path, 1.0)
    t_read = reader.number(model, "t_read", path, PCM_T_READ_S)
    if read_scale < 0:
        reader.refuse(f"{path}.read_noise_scale", f"{read_scale:g}: a scale cannot be negative")
    elif read_scale * PCM_Q_MAX > 1:
        reader.refuse(f"{path}.read_noise_scale", f"{read_scale:g}: pcm_read_1f's q_max (0.2 x scale) may be 1 at most")
    elif read_scale > 0:
        # Q_s = min(0.0088 / x^0.65, 0.2) * k = min(0.0088 k / x^0.65, 0.2 k): both limits scale.
        return [
            {
                "kind": "pcm_read_1f",
                "q_coefficient": PCM_Q_COEFFICIENT * read_scale,
                "q_exponent": PCM_Q_EXPONENT,
                "q_max": PCM_Q_MAX * read_scale,
                "t_read_s": t_read,
            }
        ]
    return []
