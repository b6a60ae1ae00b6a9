"""A run in TensorBoard: event files written by torch's ``SummaryWriter``.

Each run gets its own folder, ``<out>/tensorboard/<run name>-<time>``, so that running
a command again adds a run beside the last instead of mixing their curves; point
``tensorboard --logdir <out>/tensorboard`` at the parent to see them all. TensorBoard
keeps numbers and text, not files: a checkpoint is recorded by its path.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwprofiles.errors import HwProfilesError
from hwprofiles.tracking import EXTRA, RunInfo, flat_params


def run_folder(run: RunInfo) -> Path:
    """A fresh folder for ``run``'s event files."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = run.out_dir / "tensorboard" / f"{run.name}-{stamp}"
    n = 1
    while folder.exists():  # two runs of one name within a second
        n += 1
        folder = folder.with_name(f"{run.name}-{stamp}-{n}")
    return folder


class TensorBoardTracker:
    """One TensorBoard run: scalars by step, text for parameters, results and files."""

    def __init__(self, run: RunInfo) -> None:
        try:  # torch's writer needs the tensorboard package, and says so less clearly
            importlib.import_module("tensorboard")
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise HwProfilesError(f"--log tensorboard needs TensorBoard: {EXTRA}") from None

        self.logdir = run_folder(run)
        try:
            self.writer = SummaryWriter(log_dir=str(self.logdir))
        except OSError as exc:
            raise HwProfilesError(f"{self.logdir}: TensorBoard cannot write there: {exc.strerror or exc}") from None
        if run.tags:
            self.writer.add_text("tags", table(run.tags))

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.writer.add_text("params", table(flat_params(params)))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for name, value in metrics.items():
            self.writer.add_scalar(name, float(value), global_step=step)

    def log_artifact(self, path: str | Path, folder: str = "") -> None:
        self.writer.add_text(f"files/{folder}" if folder else "files", str(Path(path).resolve()))

    def log_text(self, text: str, name: str) -> None:
        self.writer.add_text(name, f"```\n{text}\n```")

    def close(self, failed: bool = False) -> None:
        if failed:
            self.writer.add_text("status", "failed")
        self.writer.close()


def table(values: Mapping[str, Any]) -> str:
    """A Markdown table of names and values (TensorBoard shows text as Markdown)."""
    rows = [f"| {name} | {value} |" for name, value in values.items()]
    return "\n".join(["| name | value |", "|---|---|", *rows])
