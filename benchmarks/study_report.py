"""study.md: the seed study's report, rendered from study.json (used by reproduce_study.py).

Verdicts first, then per architecture the models' figures over training seeds, then the
transfer matrices; every figure a mean over seeds with its 95% interval over them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from study_claims import (
    LEARNED,
    NIT_AT_QAT_MIDPOINT,
    TRANSFER_THRESHOLD,
    judge,
    over_seeds,
    seed_entries,
    transfer_over_seeds,
)

from hwprofiles.eval.chips import BN_RECALIBRATION_BATCHES


def ivt(iv: dict[str, Any] | None, digits: int = 3, percent: bool = False) -> str:
    """``mean [low, high]`` of an interval over seeds (``mean`` alone for one seed)."""
    if iv is None:
        return "n/a"
    f = (lambda v: f"{100 * v:+.1f}%") if percent else (lambda v: f"{v:.{digits}g}")
    if iv["n"] < 2:
        return f"{f(iv['mean'])} (1 seed)"
    return f"{f(iv['mean'])} [{f(iv['ci_low'])}, {f(iv['ci_high'])}]"


def target(iv: dict[str, Any] | None) -> str:
    """The many-profile row's target (>= TRANSFER_THRESHOLD in every column), judged as a claim."""
    verdict = judge(iv, TRANSFER_THRESHOLD - 1e-12)
    return verdict.replace("held", "met").replace("did NOT hold", "not met")


def upgrade_transfer(t: dict[str, Any], stress: set[str]) -> dict[str, Any]:
    """A transfer entry written before seeds (one matrix at the top level) as one seed's."""
    if "seeds" in t:
        return t
    one: dict[str, Any] = {k: t[k] for k in ("rows", "cols", "accuracy", "transfer_efficiency", "files") if k in t}
    return {**t, "seeds": {"0": one}, "over_seeds": transfer_over_seeds({"0": one}, stress)}


def markdown(report: dict[str, Any]) -> str:
    b, s, m = report["budget"], report["settings"], report["machine"]
    cl = report["claims"]
    # The seeds the report holds, which runs with --seeds may have measured in parts.
    measured = sorted({int(k) for e in report["architectures"].values() for k in seed_entries(e)})
    lines = [
        f"# Seed study reproduced: budget `{b['name']}`",
        "",
        f"Written by `benchmarks/reproduce_study.py --budget {b['name']}`. {b['note']}.",
        "",
        f"- Data: {b['dataset']}, training subset {b['train_subset'] or 'all'}; Adam with cosine decay, batch "
        f"{b['batch_size']}; training seeds {measured or b['seeds']} (each architecture's epochs, test images and "
        "seeds below).",
        f"- Noise: profile `{s['profile']}` (additive Gaussian after the input and every layer); "
        f"sigma = {s['sigma_per_noise_scale']} x noise_scale, so the grid sigma = "
        f"{s['sigmas'][0]:.3g} .. {s['sigmas'][-1]:.3g} ({len(s['sigmas'])} points) is noise_scale "
        f"{s['noise_scales'][0]:.3g} .. {s['noise_scales'][-1]:.3g}; K chip instances per point (seeds 0..K-1).",
        "- Every figure is a mean over the training seeds, each seed's value a mean over its K chips; "
        "`[low, high]` is the 95% Student-t interval over the seeds (with 3 seeds, t = 4.30: wide on purpose). "
        "Midpoints are geometric means with intervals taken on log10(sigma). A verdict is *held* or *did NOT hold* "
        "only where the interval lies wholly on one side of the claim's threshold, else *within noise*.",
        "- Midpoint: sigma where accuracy falls halfway from the model's peak accuracy (noise-free or over the grid) "
        f"to chance, interpolated in log(sigma); none for a model that did not learn (peak accuracy < {LEARNED}).",
        "- QAT: constant activation step `a` (unsigned activations at ReLU outputs) at 8 bits over the scale curve, "
        "and at other bit widths where listed; `qat-learned a0=` starts LSQ steps there. Claims 1 and 2 use "
        "the 8-bit constant-step model with the best mean accuracy over the grid, averaged over seeds (one choice "
        "for all seeds). NIT: trained at fixed sigmas and, as the study trains at sigma_train = sigma_test, at "
        "each seed's QAT midpoint (`nit at QAT midpoint`); noise ramped from 0 over the first max(1, epochs // 4) epochs.",
        f"- Machine: {m['platform']}, {m['cpu_count']} CPUs ({m['cpus_available']} available), torch {m['torch']}, "
        f"{m['date']}.",
        "",
        "## The claims",
        "",
    ]
    for arch, v in cl["1_qat_beats_clean"].items():
        lines.append(f"- **Claim 1** (QAT with constant scales beats clean), {arch}: **{v['verdict']}**.")
    two = cl["2_nit_beats_qat"]
    for arch, v in two["per_architecture"].items():
        lines.append(
            f"- **Claim 2** (NIT beats QAT), {arch}: **{v['verdict']}**: error reduction at QAT's midpoint of the "
            f"NIT model trained there {ivt(v['error_reduction_nit_at_qat_midpoint'], percent=True)} (best of all NIT "
            f"models, chosen after the fact: {ivt(v['error_reduction_best_nit'], percent=True)}); QAT model `{v['qat']}`."
        )
    dvs = two["deep_vs_shallow"]
    lines.append(
        f"- **Claim 2, most on deep nets** (every deep net's interval above every shallow net's): **{dvs['verdict']}**"
        + (
            "; over 40% on " + ", ".join(f"{a}: {x}" for a, x in dvs["over_40_percent"].items())
            if dvs["over_40_percent"]
            else ""
        )
        + "."
    )
    for arch, v in cl["3_nit_transfers"].items():
        w, ws = v["worst"], v["worst_without_stress"]
        lines.append(
            f"- **Claim 3** (an NIT model keeps >= {TRANSFER_THRESHOLD} of the matched model's accuracy under every "
            f"other profile), {arch}: **{v['verdict']}**: worst single-profile NIT efficiency {ivt(w)}"
            + (f" ({'; '.join(w['where'])})" if w else "")
            + f"; without the stress profiles: **{v['verdict_without_stress']}**, {ivt(ws)}."
        )
        for row, mv in v["many_profile"].items():
            lines.append(
                f"  - `{row}` (trained under every profile at once; target >= {TRANSFER_THRESHOLD} in every column): "
                f"worst efficiency {ivt(mv['worst'])}"
                + (f" (per seed: {'; '.join(mv['worst']['where'])})" if mv["worst"] else "")
                + f": **{target(mv['worst'])}**; without the stress profiles "
                f"{ivt(mv['worst_without_stress'])}: **{target(mv['worst_without_stress'])}**."
            )
    missing = [a for a in b["widths"] if a not in report["architectures"]]
    missing += [f"transfer {a}" for a in b["transfer_archs"] if a not in report.get("transfer", {})]
    if missing:
        lines += ["", f"**Not run yet** (no results above or below): {', '.join(missing)}."]
    for arch, e in report["architectures"].items():
        agg = e.get("over_seeds") or over_seeds(e)
        n = len(seed_entries(e))
        lines += [
            "",
            f"## {arch} (width {e['width']:g}, {e.get('epochs', b['epochs'])} epochs, "
            f"{e.get('test_images', b['test_subset'] or 'all')} test images, {n} seed(s))",
            "",
            "| model | learned | noise-free accuracy | midpoint sigma (reached) | midpoint / clean's | "
            "mean accuracy over the grid |",
            "|---|--:|--:|--:|--:|--:|",
        ]
        per_qat = cl["1_qat_beats_clean"].get(arch, {}).get("per_qat_model", {})
        for label, a in agg.items():
            ratio = per_qat.get(label, {}).get("log10_ratio")
            ratio_text = (
                ""
                if ratio is None
                else f"{ratio['ratio']:.3g}"
                + (f" [{ratio['ratio_ci'][0]:.3g}, {ratio['ratio_ci'][1]:.3g}]" if ratio["n"] > 1 else "")
            )
            trained_at = (
                f" (trained at sigma {', '.join(f'{x:.2g}' for x in a['train_sigma'])})"
                if (label == NIT_AT_QAT_MIDPOINT and a["train_sigma"])
                else ""
            )
            lines.append(
                f"| {label}{trained_at}{' (best QAT)' if label == e.get('best_qat') else ''} | "
                f"{a['learned']}/{a['seeds']} | {ivt(a['noise_free_accuracy'])} | "
                f"{ivt(a['midpoint_sigma'])} ({a['midpoint_reached']}/{a['learned']}) | {ratio_text} | "
                f"{ivt(a['mean_accuracy_over_grid'])} |"
            )
        lines += ["", f"![{arch}]({Path(e['figure']).name})"]
        if e.get("qat_figure"):
            lines += ["", f"![{arch}: QAT midpoint against its activation step]({Path(e['qat_figure']).name})"]
        lines += ["", f"Regenerate: `{e['regenerate']}`; this process took {e.get('elapsed_min', 0):.0f} min."]
    for arch, t in report.get("transfer", {}).items():
        o = t["over_seeds"]
        n = len(t["seeds"])
        lines += [
            "",
            f"## Transfer matrix: {arch} (width {t['width']:g}, {t.get('epochs', b['transfer_epochs'])} epochs, "
            f"{t.get('test_images', b['transfer_test_subset'] or 'all')} test images, {n} seed(s)"
            + (f" of {len(t['seeds_planned'])} planned" if len(t.get("seeds_planned", [])) > n else "")
            + ")",
            "",
            "Transfer efficiency: accuracy / accuracy of the NIT model trained under the column's profile; "
            f"mean over seeds. Stress profiles: {', '.join(o['stress_profiles']) or 'none'}."
            + (
                f" Batch norm re-estimated on every chip after programming ({BN_RECALIBRATION_BATCHES} training "
                "batches), as chips calibrate."
                if t.get("recalibrate_bn")
                else ""
            ),
            "",
            "| trained \\ evaluated | " + " | ".join(o["cols"]) + " |",
            "|---|" + "--:|" * len(o["cols"]),
        ]
        for r in o["rows"]:
            cells = []
            for c in o["cols"]:
                iv = o["transfer_efficiency"].get(f"{r} | {c}")
                acc = o["accuracy"].get(f"{r} | {c}")
                cells.append("–" if iv is None else f"{iv['mean']:.3f}" if acc is None else f"{iv['mean']:.3f}")
            lines.append(f"| {r} | " + " | ".join(cells) + " |")
        files = [f"`{Path(p).name}`" for seed in t["seeds"].values() for p in seed.get("files", {}).values()]
        lines += ["", f"Per-seed tables and heatmaps: {', '.join(files)}; regenerate: `{t['regenerate']}`."]
    lines.append("")
    return "\n".join(lines)
