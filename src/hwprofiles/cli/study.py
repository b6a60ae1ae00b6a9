"""``hwprofiles study GRID``: the transfer matrices of a study grid file, over models and
training seeds (:func:`hwprofiles.eval.study.run_study`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwprofiles.cli import options as opt
from hwprofiles.cli.output import print_json, report_failures

app = typer.Typer()


@app.command("study")
@opt.option_group(opt.RunOptions)
def study_command(
    *,
    grid_file: Annotated[
        Path,
        typer.Argument(
            metavar="GRID",
            help="A study grid (YAML): models, seeds, profiles, training; see docs/study-grid.example.yaml.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the matrices, checkpoints and summary.")
    ] = opt.OUT / "study",
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Only check the grid file and the names in it, print the grid with every default, and exit."
        ),
    ] = False,
    storage: opt.Storage = None,
    as_json: opt.Json = False,
    run: opt.RunOptions,
) -> None:
    """Train and evaluate a study grid from a YAML file: models x training seeds, each a transfer matrix."""
    from hwprofiles.eval.study import check_names, load_study_grid

    grid = load_study_grid(grid_file)  # a bad file or name fails here, before anything is trained
    check_names(grid, str(grid_file))
    if check:
        import yaml

        typer.echo(yaml.safe_dump(grid.model_dump(mode="json"), sort_keys=False), nl=False)
        return
    from hwprofiles.eval.grid import GridStats
    from hwprofiles.eval.study import run_study

    stats = GridStats()
    result = run_study(
        grid,
        out,
        store=run.store(),
        executor=run.runner(),
        storage=storage,
        stats=stats,
        progress=run.progress,
        device=run.device,
        on_event=lambda message: typer.echo(message, err=as_json),
        source=str(grid_file),
    )
    if as_json:
        print_json(result.to_dict())
    else:
        typer.echo(result.to_markdown())
    typer.echo(f"each matrix in {out}/MODEL-sSEED/; the summary in {out}/study.md and study.json", err=as_json)
    report_failures(stats)
