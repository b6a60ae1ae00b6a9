"""``hwprofiles eval``: models under profiles over K chip instances
(:func:`hwprofiles.eval.chips.evaluate_models`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.config import configurable
from hwprofiles.cli.output import console, print_json, report_failures, table
from hwprofiles.cli.tracking_options import TrackingOptions

app = typer.Typer()


@app.command("eval")
@configurable
@opt.option_group(opt.ModelOptions)
@opt.option_group(opt.RunOptions)
@opt.option_group(TrackingOptions)
def eval_command(
    *,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Evaluation profile (repeatable); 'all' for every profile."),
    ] = None,
    source: opt.ModelOptions,
    samples: opt.Samples = 5,
    noise_scale: Annotated[float | None, typer.Option("--noise-scale", min=0)] = None,
    t_inference: Annotated[
        float | None, typer.Option("--t-inference", min=0, help="Seconds since programming.")
    ] = None,
    as_json: opt.Json = False,
    json_out: opt.JsonOut = None,
    conversion: Annotated[
        bool,
        typer.Option(
            "--conversion/--no-conversion",
            help="Also list, per model, every matrix layer: converted to its noisy twin, or left float and why.",
        ),
    ] = False,
    recalibrate_bn: opt.RecalibrateBn = False,
    run: opt.RunOptions,
    tracking: TrackingOptions,
    ctx: typer.Context,
) -> None:
    """Accuracy of checkpoints (or weights trained elsewhere) under profiles, over K chip instances."""
    from hwprofiles.eval.chips import CheckpointSettings, evaluate_models
    from hwprofiles.eval.grid import GridStats
    from hwprofiles.eval.trained import evaluation_loaders
    from hwprofiles.progress import ChipProgress
    from hwprofiles.tracking.grids import log_evaluation

    opt.check_json_flag(as_json, source.checkpoints)
    names = opt.profile_names(profile)
    splits, models = source.load()
    runner = run.runner()
    if conversion:
        from hwprofiles.nn.convert import conversion_report

        for trained in models:
            typer.echo(f"{trained.label} under {names[0]}:\n{conversion_report(trained.model, names[0])}\n")
    params = {"profiles": names, "models": [t.label for t in models], "samples": samples, "noise_scale": noise_scale}
    tracker = tracking.start(
        ctx, "eval", json_out.parent if json_out else opt.OUT, params={**params, "t_inference_s": t_inference}
    )
    stats = GridStats()
    with ChipProgress("chip instances", len(models) * len(names) * samples, enabled=run.progress) as bar:
        report = evaluate_models(
            models,
            names,
            evaluation_loaders(splits),
            CheckpointSettings(
                samples=samples,
                noise_scale=noise_scale,
                t_inference_s=t_inference,
                test_set=source.test_set(splits),
                device=run.device,
                recalibrate_bn=recalibrate_bn,
            ),
            store=run.store(),
            executor=runner,
            on_sample=bar.advance,
            on_progress=bar.counts,
            stats=stats,
        )
    if as_json:
        print_json(json.loads(report.to_json()))
    else:
        summary = table("model", "profile", "mean acc", "std", "95% CI", "K")
        summary.title = f"accuracy over {samples} chip instances"
        for trained, name, s in report.rows:
            summary.add_row(
                trained.label, name, f"{s.mean:.4f}", f"{s.std:.4f}", f"[{s.ci_low:.4f}, {s.ci_high:.4f}]", str(s.n)
            )
        console().print(summary)
    log_evaluation(tracker, report)
    if json_out:
        report.write_json(json_out)
        typer.echo(f"results written to {json_out}", err=as_json)
    report_failures(stats)
