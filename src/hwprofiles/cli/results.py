"""``hwprofiles results ...``: the results database (:mod:`hwprofiles.results`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hwprofiles.cli import options as opt

app = typer.Typer(help="The results database.", no_args_is_help=True)


@app.command("export")
def results_export(
    fmt: Annotated[str, typer.Option("--format", help="csv, json or parquet (needs pyarrow).")] = "csv",
    table: Annotated[str, typer.Option("--table", help="evals or runs.")] = "evals",
    results: opt.ResultsDb = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write.", show_default="stdout")] = None,
) -> None:
    """Export every stored run or evaluation, one self-describing row each (keys, hashes, labels, ISO times)."""
    from hwprofiles.io import write_bytes, write_text
    from hwprofiles.results import EXPORT_FORMATS, TABLES, export_results

    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(f"use {', '.join(EXPORT_FORMATS)}", param_hint="--format")
    if fmt == "parquet" and out is None:
        raise typer.BadParameter("Parquet is binary: give a file with --out", param_hint="--out")
    if table not in TABLES:
        raise typer.BadParameter(f"use {' or '.join(TABLES)}", param_hint="--table")
    data = export_results(results, table, fmt)
    if out is None:
        typer.echo(data, nl=False)
        return
    if isinstance(data, bytes):
        write_bytes(out, data)
    else:
        write_text(out, data)
    typer.echo(f"written to {out}")
