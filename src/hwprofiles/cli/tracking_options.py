"""``--log`` and ``--log-uri``: record a command's run in MLflow or TensorBoard
(:mod:`hwprofiles.tracking`). The commands ``train``, ``eval``, ``sweep`` and ``transfer``
take them as one option group::

    @opt.option_group(TrackingOptions)
    def command(ctx: typer.Context, *, ..., tracking: TrackingOptions) -> None:
        tracker = tracking.start(ctx, "run-name", out_dir, params={...})

Nothing here imports MLflow, TensorBoard or torch until a tracker is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.tracking import Trackers


@dataclass(frozen=True)
class TrackingOptions:
    """Which experiment trackers record the run, and where MLflow records."""

    log: Annotated[
        list[str] | None,
        typer.Option(
            "--log",
            metavar="mlflow|tensorboard",
            help="Record the run's parameters, metrics, checkpoints and results in MLflow or TensorBoard "
            "(repeatable, or a comma list); needs the tracking extra of hwprofiles.",
        ),
    ] = None
    log_uri: Annotated[
        str | None,
        typer.Option(
            "--log-uri",
            help="Where --log mlflow records: a tracking URI (file:/path, http://server:5000) "
            "(default: $MLFLOW_TRACKING_URI, else the file store hwprofiles-out/mlruns).",
        ),
    ] = None

    def start(
        self, ctx: typer.Context, run_name: str, out_dir: Path, params: Mapping[str, Any] | None = None
    ) -> Trackers:
        """Open the trackers of ``--log`` for this command's run and record ``params``; they
        are closed when the command's context ``ctx`` ends (as failed if it raised). TensorBoard writes under
        ``out_dir/tensorboard``. Under torchrun only rank 0 records."""
        from hwprofiles.tracking import parse_kinds, start

        kinds = parse_kinds(self.log) if os.environ.get("RANK", "0") == "0" else []
        if self.log_uri and "mlflow" not in parse_kinds(self.log):
            raise typer.BadParameter("it is where MLflow records: give --log mlflow too", param_hint="--log-uri")
        tags = {"command": ctx.info_name or ""}
        trackers = ctx.with_resource(start(kinds, run_name=run_name, uri=self.log_uri, out_dir=out_dir, tags=tags))
        if params:
            trackers.log_params(params)
        return trackers
