"""The seed study's verdicts over training seeds and chip instances (used by reproduce_study.py).

One training seed cannot judge a robustness claim: on LeNet-5 the same QAT setting gave a
midpoint below clean with one seed and above it with another. So every figure here is a
mean over training seeds with a 95% Student-t interval over those seeds (each seed's value
is itself a mean over K chip instances), and a verdict is only "held" or "did NOT hold"
when that interval lies wholly on one side of the claim's threshold; otherwise it is
"within noise". Midpoints are compared on a log scale (they span four decades), as the
ratio QAT / clean of the same training seed.

Pure functions of the study's JSON: no training, no evaluation, so the verdicts can be
recomputed from ``study.json`` alone and are unit-tested.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hwprofiles.eval.summary import summarize

DEEP = ("vgg11", "resnet20", "resnet18", "mobilenetv2")
LEARNED = 0.2  # a model whose peak accuracy is below this (2x chance) did not learn; no midpoint
TRANSFER_THRESHOLD = 0.9
NIT_AT_QAT_MIDPOINT = "nit at QAT midpoint"  # trained at sigma_train = sigma_test, as the study does


# -- intervals --------------------------------------------------------------------------
def interval(
    values: list[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> dict[str, Any] | None:
    """Mean, sample std and Student-t interval of the mean (:func:`hwprofiles.eval.summarize`),
    clipped to ``bounds`` if given (accuracies: (0, 1)); None for no values. With one value the
    interval is that value (n = 1 says there is no spread to judge)."""
    return summarize(values, confidence, bounds=bounds).as_dict() if values else None


def accuracy_interval(values: list[float]) -> dict[str, Any] | None:
    return interval(values, bounds=(0.0, 1.0))


def efficiency_interval(values: list[float]) -> dict[str, Any] | None:
    """A ratio of accuracies: never below 0, and it may exceed 1 (a model beating the matched one)."""
    return interval(values, bounds=(0.0, math.inf))


def log_interval(values: list[float]) -> dict[str, Any] | None:
    """The interval of log10(values), back-transformed: geometric mean and its interval."""
    iv = interval([math.log10(v) for v in values])
    if iv is None:
        return None
    return {
        "mean": 10 ** iv["mean"],
        "ci_low": 10 ** iv["ci_low"],
        "ci_high": 10 ** iv["ci_high"],
        "log10_std": iv["std"],
        "n": iv["n"],
    }


def judge(iv: dict[str, Any] | None, threshold: float = 0.0) -> str:
    """held: the interval lies above ``threshold``; did NOT hold: below it; else within noise."""
    if iv is None:
        return "n/a"
    if iv["n"] < 2:
        return ("held" if iv["mean"] > threshold else "did NOT hold") + " (one seed: no interval)"
    if iv["ci_low"] > threshold:
        return "held"
    if iv["ci_high"] < threshold:
        return "did NOT hold"
    return "within noise (the seeds' 95% interval spans the threshold)"


# -- one architecture over seeds --------------------------------------------------------
def peak_accuracy(model: dict[str, Any]) -> float:
    return model.get("peak_accuracy", model.get("noise_free_accuracy", 0.0))


def learned(model: dict[str, Any]) -> bool:
    return not model.get("diverged") and peak_accuracy(model) >= LEARNED


def learned_midpoints(entry: dict[str, Any]) -> dict[str, float | None]:
    """Midpoints of the models of one seed that learned; a model near chance has none."""
    return {k: m.get("midpoint_sigma") for k, m in entry["models"].items() if learned(m)}


def seed_entries(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per training seed, the models of an architecture. Reports written before seeds
    existed hold one seed's models at the top level; their NIT model at QAT's midpoint was
    named by its sigma (``nit_at_qat_midpoint``)."""
    if "seeds" in entry:
        return entry["seeds"]
    one = dict(entry)
    alias = entry.get("nit_at_qat_midpoint")
    if alias and alias in entry["models"]:
        one["models"] = {**entry["models"], NIT_AT_QAT_MIDPOINT: entry["models"][alias]}
        comp = entry.get("nit_vs_qat")
        if comp and alias in comp.get("relative_error_reduction_each", {}):
            each = comp["relative_error_reduction_each"]
            one["nit_vs_qat"] = {**comp, "relative_error_reduction_each": {**each, NIT_AT_QAT_MIDPOINT: each[alias]}}
    return {"0": one}


def labels(seeds: dict[str, dict[str, Any]]) -> list[str]:
    """Model labels in first-seen order over the seeds."""
    out: list[str] = []
    for e in seeds.values():
        out += [k for k in e["models"] if k not in out]
    return out


def over_seeds(entry: dict[str, Any]) -> dict[str, Any]:
    """Per model label: noise-free accuracy, midpoint, mean accuracy over the grid and the
    curve, each as a mean over the training seeds with its interval."""
    seeds = seed_entries(entry)
    out: dict[str, Any] = {}
    for label in labels(seeds):
        runs = [e["models"][label] for e in seeds.values() if label in e["models"]]
        good = [m for m in runs if learned(m)]
        mids = [m["midpoint_sigma"] for m in good if m.get("midpoint_sigma") is not None]
        curve = []
        for i, point in enumerate(good[0]["curve"] if good else []):
            means = [m["curve"][i]["mean"] for m in good]
            halves = [(m["curve"][i]["ci_high"] - m["curve"][i]["ci_low"]) / 2 for m in good]
            curve.append(
                {"sigma": point["sigma"], **accuracy_interval(means), "chip_ci_half_width": sum(halves) / len(halves)}  # type: ignore[dict-item]
            )
        out[label] = {
            "seeds": len(runs),
            "learned": len(good),
            "noise_free_accuracy": accuracy_interval([m["noise_free_accuracy"] for m in good]),
            "midpoint_sigma": log_interval(mids),
            "midpoint_reached": len(mids),
            "mean_accuracy_over_grid": accuracy_interval([m["mean_accuracy_over_grid"] for m in good]),
            "train_sigma": sorted({m["train_sigma"] for m in runs if "train_sigma" in m}) or None,
            "curve": curve,
        }
    return out


def best_qat(seeds: dict[str, dict[str, Any]], prefix: str = "qat a=") -> str | None:
    """The constant-scale 8-bit QAT model with the best mean accuracy over the grid,
    averaged over the seeds (one choice for every seed, so no seed picks its own)."""
    scores: dict[str, list[float]] = {}
    for e in seeds.values():
        for k, m in e["models"].items():
            if k.startswith(prefix) and learned(m):
                scores.setdefault(k, []).append(m["mean_accuracy_over_grid"])
    full = {k: v for k, v in scores.items() if len(v) == len(seeds)}
    return max(full, key=lambda k: sum(full[k]) / len(full[k])) if full else None


def qat_label(bits: int, scale: float, learned_scales: bool = False) -> str:
    """``qat a=4`` (8 bits, constant step 4), ``qat4 a=4``, ``qat-learned a0=1`` (LSQ from 1)."""
    if learned_scales:
        return f"qat-learned{'' if bits == 8 else bits} a0={scale:g}"
    return f"qat{'' if bits == 8 else bits} a={scale:g}"


def qat_scale_of(label: str) -> tuple[int, float, bool] | None:
    """The inverse of :func:`qat_label`: (bits, scale, learned), None for other models."""
    match = re.fullmatch(r"qat(-learned)?(\d*) a0?=(\S+)", label)
    if match is None:
        return None
    return (int(match[2] or 8), float(match[3]), match[1] is not None)


# -- the claims -------------------------------------------------------------------------
def paired_log_ratio(seeds: dict[str, dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    """log10(midpoint a / midpoint b) per seed where both learned and reached a midpoint."""
    values = []
    for e in seeds.values():
        mids = learned_midpoints(e)
        if mids.get(a) is not None and mids.get(b) is not None:
            values.append(math.log10(mids[a] / mids[b]))  # type: ignore[operator]
    iv = interval(values)
    if iv is not None:
        iv["ratio"] = 10 ** iv["mean"]
        iv["ratio_ci"] = [10 ** iv["ci_low"], 10 ** iv["ci_high"]]
    return iv


def claim1(entry: dict[str, Any]) -> dict[str, Any]:
    """QAT beats clean, judged on every QAT scale and bit width: midpoint ratio QAT / clean."""
    seeds = seed_entries(entry)
    per_scale = {}
    for label in labels(seeds):
        if qat_scale_of(label) is None:
            continue
        iv = paired_log_ratio(seeds, label, "clean")
        learned_in = sum(1 for e in seeds.values() if label in e["models"] and learned(e["models"][label]))
        per_scale[label] = {
            "log10_ratio": iv,
            "learned_in": learned_in,
            "verdict": judge(iv) if learned_in == len(seeds) else f"did not learn in {len(seeds) - learned_in} seed(s)",
        }
    held = [k for k, v in per_scale.items() if v["verdict"].startswith("held")]
    reversed_ = [k for k, v in per_scale.items() if v["verdict"].startswith("did NOT hold")]
    noise = [k for k, v in per_scale.items() if v["verdict"].startswith("within noise")]
    reductions = [e["qat_vs_clean"]["relative_error_reduction"] for e in seeds.values() if e.get("qat_vs_clean")]
    failed = [
        f"{k} ({len(seeds) - v['learned_in']} of {len(seeds)})"
        for k, v in per_scale.items()
        if v["verdict"].startswith("did not learn")
    ]
    parts = [f"QAT worse at {', '.join(reversed_)}"] if reversed_ else []
    parts += [f"within noise at {', '.join(noise)}"] if noise else []
    parts += [f"not judged where seeds did not learn: {', '.join(failed)}"] if failed else []
    if not any(v["log10_ratio"] for v in per_scale.values()):
        verdict = "n/a (no QAT model learned and reached a midpoint in every seed)"
    elif held:
        verdict = f"held at {', '.join(held)}" + (f" ({'; '.join(parts)})" if parts else "")
    else:
        verdict = "did NOT hold at any QAT setting" + (f" ({'; '.join(parts)})" if parts else "")
    if len(seeds) < 2 and per_scale:
        verdict += " (one seed: no interval)"
    return {
        "per_qat_model": per_scale,
        "held_at": held,
        "reversed_at": reversed_,
        "best_qat": entry.get("best_qat"),
        "error_reduction_at_clean_midpoint": interval([r for r in reductions if r is not None]),
        "verdict": verdict,
    }


def claim2(entry: dict[str, Any]) -> dict[str, Any]:
    """NIT beats QAT: relative error reduction at each seed's QAT midpoint, of the NIT model
    trained at that sigma (the study's protocol) and, for reference, of the best NIT model."""
    seeds = seed_entries(entry)
    matched, best, names = [], [], []
    for e in seeds.values():
        comp = e.get("nit_vs_qat")
        if not comp:
            continue
        each = comp.get("relative_error_reduction_each", {})
        if each.get(NIT_AT_QAT_MIDPOINT) is not None:
            matched.append(each[NIT_AT_QAT_MIDPOINT])
        if comp.get("relative_error_reduction") is not None:
            best.append(comp["relative_error_reduction"])
            names.append(comp.get("best_nit"))
    iv = interval(matched)
    return {
        "qat": entry.get("best_qat"),
        "error_reduction_nit_at_qat_midpoint": iv,
        "error_reduction_best_nit": interval(best),
        "best_nit_per_seed": names,
        "deep": entry.get("arch") in DEEP,
        "verdict": judge(iv),
        "did_not_learn": sorted({k for e in seeds.values() for k, m in e["models"].items() if not learned(m)}),
    }


def deep_vs_shallow(two: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Claim 2's 'most on deep nets': every deep net's reduction interval above every shallow one's."""
    deep = {a: v["error_reduction_nit_at_qat_midpoint"] for a, v in two.items() if a in DEEP}
    shallow = {a: v["error_reduction_nit_at_qat_midpoint"] for a, v in two.items() if a not in DEEP}
    deep = {a: v for a, v in deep.items() if v}
    shallow = {a: v for a, v in shallow.items() if v}
    if not deep or not shallow:
        return {"verdict": "n/a (needs a deep and a shallow net)", "over_40_percent": {}}
    lo_deep = min(v["ci_low"] for v in deep.values())
    hi_shallow = max(v["ci_high"] for v in shallow.values())
    means = min(v["mean"] for v in deep.values()) > max(v["mean"] for v in shallow.values())
    if lo_deep > hi_shallow:
        verdict = "held"
    elif not means:
        verdict = "did NOT hold"
    else:
        verdict = "within noise (deep means larger, intervals overlap)"
    if min(v["n"] for v in [*deep.values(), *shallow.values()]) < 2:
        verdict += " (one seed: no interval)"
    return {"verdict": verdict, "over_40_percent": {a: judge(v, 0.4) for a, v in deep.items()}}


def transfer_over_seeds(seeds: dict[str, dict[str, Any]], stress: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """Cells, efficiencies and claim 3's worst case over the training seeds of a transfer matrix.

    Claim 3 as the study states it uses the single-profile NIT rows; the many-profile rows
    (``nit:all``, ``nit:a+b``) are judged apart against the 0.90 target."""
    runs = list(seeds.values())
    rows, cols = runs[0]["rows"], runs[0]["cols"]
    cells, eff = {}, {}
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            key = f"{r} | {c}"
            cells[key] = accuracy_interval([t["accuracy"][key]["mean"] for t in runs if key in t["accuracy"]])
            values = [t["transfer_efficiency"][i][j] for t in runs if t["transfer_efficiency"][i][j] is not None]
            eff[key] = efficiency_interval(values)

    def worst(row_ok: Any, skip: set[str]) -> dict[str, Any] | None:
        per_seed = []
        for t in runs:
            found = [
                (v, r, c)
                for i, r in enumerate(rows)
                for j, c in enumerate(cols)
                if row_ok(r) and r != f"nit:{c}" and c not in skip and (v := t["transfer_efficiency"][i][j]) is not None
            ]
            if found:
                per_seed.append(min(found))
        if not per_seed:
            return None
        iv = efficiency_interval([v for v, _, _ in per_seed])
        return {**iv, "where": [f"{r} under {c}" for _, r, c in per_seed]}  # type: ignore[dict-item]

    def single(r: str) -> bool:
        method, _, p = r.partition(":")
        return method == "nit" and "+" not in p and p.split("[")[0] != "all"

    mixed = [r for r in rows if r.startswith("nit:") and not single(r)]
    single_worst = worst(single, set())
    single_worst_no_stress = worst(single, set(stress))
    return {
        "rows": rows,
        "cols": cols,
        "accuracy": cells,
        "transfer_efficiency": eff,
        "claim3_worst": single_worst,
        "claim3_worst_without_stress": single_worst_no_stress,
        "claim3_verdict": judge(single_worst, TRANSFER_THRESHOLD - 1e-12),
        "claim3_verdict_without_stress": judge(single_worst_no_stress, TRANSFER_THRESHOLD - 1e-12),
        "stress_profiles": sorted(stress),
        "many_profile": {
            r: {
                "worst": worst(lambda x, r=r: x == r, set()),
                "worst_without_stress": worst(lambda x, r=r: x == r, set(stress)),
            }
            for r in mixed
        },
    }


def claims(report: dict[str, Any]) -> dict[str, Any]:
    """Every claim's verdict from a report's architectures and transfer matrices."""
    archs = report.get("architectures", {})
    one = {a: claim1({**e, "arch": a}) for a, e in archs.items()}
    two = {a: claim2({**e, "arch": a}) for a, e in archs.items()}
    three = {a: t["over_seeds"] for a, t in report.get("transfer", {}).items() if "over_seeds" in t}
    return {
        "1_qat_beats_clean": one,
        "2_nit_beats_qat": {"per_architecture": two, "deep_vs_shallow": deep_vs_shallow(two)},
        "3_nit_transfers": {
            a: {
                "verdict": t["claim3_verdict"],
                "verdict_without_stress": t["claim3_verdict_without_stress"],
                "worst": t["claim3_worst"],
                "worst_without_stress": t["claim3_worst_without_stress"],
                "many_profile": t["many_profile"],
            }
            for a, t in three.items()
        },
    }
