"""``hwprofiles sweep``: accuracy against noise scale, time, or per layer
(:func:`hwprofiles.eval.sweep.run_sweep`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.config import configurable
from hwprofiles.cli.output import console, print_json, report_failures, table
from hwprofiles.cli.tracking_options import TrackingOptions

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.eval.sweep import SweepReport

app = typer.Typer()


@app.command("sweep")
@configurable
@opt.option_group(opt.ModelOptions)
@opt.option_group(opt.RunOptions)
@opt.option_group(TrackingOptions)
def sweep_command(
    *,
    profile: Annotated[str, typer.Option("--profile", "-p", help="The profile to sweep.")] = "gaussian-additive",
    over: Annotated[
        str,
        typer.Option("--over", help="noise (noise scale), time (t_inference) or layer (one noisy layer at a time)."),
    ] = "noise",
    source: opt.ModelOptions,
    low: Annotated[float, typer.Option("--low", min=0)] = 1e-2,
    high: Annotated[float, typer.Option("--high", min=0)] = 1e2,
    points: Annotated[int, typer.Option("--points", min=2, help="Grid points (log-spaced).")] = 17,
    noise_scale: Annotated[
        float | None, typer.Option("--noise-scale", min=0, help="Noise scale of the time and layer sweeps.")
    ] = None,
    samples: opt.Samples = 5,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the plot and JSON.")] = opt.OUT / "sweeps",
    as_json: opt.Json = False,
    recalibrate_bn: opt.RecalibrateBn = False,
    run: opt.RunOptions,
    tracking: TrackingOptions,
    ctx: typer.Context,
) -> None:
    """Accuracy against noise scale (with the midpoint), time since programming, or per layer."""
    import hwprofiles
    from hwprofiles.eval.grid import GridStats
    from hwprofiles.eval.sweep import SWEEPS, log_grid, run_sweep
    from hwprofiles.eval.trained import evaluation_loaders
    from hwprofiles.progress import ChipProgress
    from hwprofiles.tracking.grids import log_sweep

    if over not in SWEEPS:
        raise typer.BadParameter(f"use {', '.join(SWEEPS)}", param_hint="--over")
    if over == "noise" and not 0 < low < high:
        raise typer.BadParameter("the noise grid is log-spaced: give 0 < --low < --high", param_hint="--low/--high")
    swept = hwprofiles.load_profile(profile)  # an unknown name fails before any model is loaded
    splits, models = source.load()
    runner = run.runner()
    params = {"profile": swept.name, "over": over, "models": [t.label for t in models], "samples": samples}
    tracker = tracking.start(ctx, f"sweep-{over}-{swept.name}", out, params={**params, "noise_scale": noise_scale})
    stats = GridStats()
    with ChipProgress(f"{over} sweep under {swept.name}", None, enabled=run.progress) as bar:
        report = run_sweep(
            models,
            swept,
            evaluation_loaders(splits),
            over=over,
            grid=log_grid(low, high, points) if over == "noise" else None,
            noise_scale=noise_scale,
            samples=samples,
            store=run.store(),
            test_set=source.test_set(splits),
            chance=1.0 / splits.num_classes,
            on_sample=bar.advance,
            on_progress=bar.counts,
            device=run.device,
            executor=runner,
            stats=stats,
            recalibrate_bn=recalibrate_bn,
        )
    for path in report.write(out, dataset=splits.name).values():
        tracker.log_artifact(path, "sweep")
    log_sweep(tracker, report)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    typer.echo(f"plot and JSON written to {out}/sweep-{over}-{report.profile}*", err=as_json)
    report_failures(stats)


def _print_report(report: SweepReport) -> None:
    """The midpoint of each model (a noise sweep), or its accuracy at each point."""
    data = report.to_dict()["models"]
    if report.over == "noise":
        midpoints = table("model", "clean acc", "midpoint noise scale")
        for label, entry in data.items():
            mid, clean = entry["midpoint"], entry["clean_accuracy"]
            midpoints.add_row(
                label, "failed" if clean is None else f"{clean:.4f}", "not reached" if mid is None else f"{mid:.4g}"
            )
        console().print(midpoints)
        console().print(
            "midpoint: the noise scale where accuracy falls halfway from clean accuracy to chance, "
            "interpolated linearly in log(noise scale) between grid points."
        )
        return
    accuracies = table("model", "time (s)" if report.over == "time" else "layer", "mean acc", "95% CI")
    for label, entry in data.items():
        items = entry["points"] if report.over == "time" else [{"x": k, **v} for k, v in entry["layers"].items()]
        for p in items:
            accuracies.add_row(label, f"{p['x']}", f"{p['mean']:.4f}", f"[{p['ci_low']:.4f}, {p['ci_high']:.4f}]")
    console().print(accuracies)
