"""``hwprofiles demo``: the study's workflow end to end (:func:`hwprofiles.demo.run_demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.config import configurable

app = typer.Typer()


@app.command("demo")
@configurable
@opt.option_group(opt.RunOptions, omit=("results",))
def demo_command(
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = opt.OUT / "demo",
    nit_profile: Annotated[
        str, typer.Option("--nit-profile", help="The profile NIT trains under.")
    ] = "gaussian-additive",
    nit_scale: Annotated[
        float | None, typer.Option("--nit-scale", min=0, help="NIT's training noise scale.", show_default="5")
    ] = 5.0,
    mixed: Annotated[
        str | None,
        typer.Option(
            "--mixed",
            help="Also train NIT under these profiles at once (NAME,NAME:WEIGHT,... or all; none: no such row).",
        ),
    ] = "all",
    samples: opt.Samples = 3,
    data_root: opt.DataRoot = None,
    download: opt.Download = False,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick/--no-quick", help="A much smaller run (synthetic data, one small model) to check the set-up."
        ),
    ] = False,
    storage: opt.Storage = None,
    run: opt.RunOptions,
) -> None:
    """The main job: train clean, QAT and NIT, evaluate under every profile, write a report."""
    from hwprofiles.demo import run_demo

    report = run_demo(
        out,
        nit_profile=nit_profile,
        nit_scale=nit_scale,
        mixed=None if mixed in (None, "", "none") else mixed,
        samples=samples,
        data_root=data_root,
        download=download,
        quick=quick,
        device=run.device,
        progress=run.progress,
        echo=typer.echo,
        executor=run.runner(),
        storage=storage,
    )
    typer.echo(f"\nreport written to {report}")
