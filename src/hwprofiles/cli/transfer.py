"""``hwprofiles transfer``: the cross-hardware transfer matrix (:func:`hwprofiles.eval.transfer.run_transfer`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.config import configurable
from hwprofiles.cli.output import print_json, report_failures
from hwprofiles.cli.tracking_options import TrackingOptions

app = typer.Typer()


@app.command("transfer")
@configurable
@opt.option_group(opt.TrainingOptions, defaults={"epochs": 3})
@opt.option_group(opt.RunOptions)
@opt.option_group(TrackingOptions)
def transfer_command(
    *,
    model: Annotated[
        str, typer.Option("--model", help="A zoo model (listed by hwprofiles models) or torchvision:NAME.")
    ] = "lenet5",
    dataset: opt.Dataset = "fashion-mnist",
    train_profile: Annotated[
        list[str] | None,
        typer.Option(
            "--train-profile", help="NIT training profile (repeatable).", show_default="every profile with noise"
        ),
    ] = None,
    eval_profile: Annotated[
        list[str] | None, typer.Option("--eval-profile", help="Evaluation profile (repeatable).", show_default="all")
    ] = None,
    mixed: Annotated[
        list[str] | None,
        typer.Option(
            "--mixed",
            help="Also train NIT under several profiles at once, each step under one sampled by weight: "
            "NAME,NAME:WEIGHT,... or all (repeatable; one row each).",
        ),
    ] = None,
    scale_mode: Annotated[
        str,
        typer.Option(
            "--scale-mode",
            help="published (each profile as written) or matched (scaled so a clean model loses --target-drop).",
        ),
    ] = "published",
    target_drop: Annotated[float, typer.Option("--target-drop", min=0.01, max=0.9)] = 0.1,
    training: opt.TrainingOptions,
    samples: opt.Samples = 5,
    weights: Annotated[
        list[Path] | None,
        typer.Option(
            "--weights", help="Also evaluate this state_dict of --model, trained elsewhere, as a row (repeatable)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o")] = opt.OUT / "transfer",
    storage: opt.Storage = None,
    as_json: opt.Json = False,
    recalibrate_bn: opt.RecalibrateBn = False,
    run: opt.RunOptions,
    tracking: TrackingOptions,
    ctx: typer.Context,
) -> None:
    """Train clean, QAT and NIT under each training profile; evaluate all under every profile."""
    from hwprofiles.eval.grid import GridStats
    from hwprofiles.eval.trained import evaluation_loaders, load_weights, test_set_id
    from hwprofiles.eval.transfer import noisy_profiles, run_transfer
    from hwprofiles.tracking.grids import log_transfer

    evals = opt.profile_names(eval_profile)
    trains = train_profile or noisy_profiles()
    opt.profile_names(trains)  # unknown names fail here, before any training
    mixes = [training.config(model=model, dataset=dataset, method="nit", profile=spec) for spec in mixed or []]
    splits = training.load_dataset(dataset)
    # The runs train on these splits (loaded with --download above), so their configs leave
    # download off: a run resumes only under the config that wrote it, with --download or not.
    base = training.config(model=model, dataset=dataset, download=False)
    params = {**base.to_dict(), "train_profiles": trains, "eval_profiles": evals, "samples": samples}
    tracker = tracking.start(
        ctx, "transfer", out, params={**params, "scale_mode": scale_mode, "target_drop": target_drop}
    )
    stats = GridStats()
    result = run_transfer(
        base,
        train_profiles=trains,
        mixed_profiles=[c.profile for c in mixes if c.profile],
        eval_profiles=evals,
        out_dir=out,
        splits=splits,
        loaders=evaluation_loaders(splits),
        extra_models=[load_weights(p, model, splits, width=training.width) for p in weights or []],
        executor=run.runner(),
        storage=storage,
        stats=stats,
        samples=samples,
        scale_mode=scale_mode,
        target_drop=target_drop,
        store=run.store(),
        test_set=test_set_id(splits, training.test_subset),
        progress=run.progress,
        device=run.device,
        recalibrate_bn=recalibrate_bn,
        on_event=lambda message: typer.echo(message, err=as_json),
    )
    if as_json:
        print_json(json.loads(result.to_json()))
    else:
        typer.echo(result.to_markdown())
    log_transfer(tracker, result)
    typer.echo(f"CSV, JSON, Markdown and heatmaps written to {out}", err=as_json)
    report_failures(stats)
