"""Experiment tracking: each run's parameters, per-epoch metrics, checkpoints and result
grids, recorded in the tools the user already opens (MLflow, TensorBoard).

A :class:`Tracker` is one run in one tool. :func:`start` opens the trackers named (by
``--log``) as one run and closes them when the run ends, marking it failed if it raised.
The training loop knows nothing of them: ``train(..., on_epoch=trackers.log_epoch)``
records each epoch as it ends. The evaluation grids are recorded from
their reports (:mod:`hwprofiles.tracking.grids`).

MLflow and TensorBoard are optional (``pip install 'hwprofiles[tracking]'``) and imported
only when a tracker of theirs is opened.

>>> from hwprofiles.tracking import start
>>> with start(["tensorboard"], run_name="demo", out_dir="runs") as tracker:  # doctest: +SKIP
...     tracker.log_params({"lr": 1e-3})
...     tracker.log_metrics({"loss": 0.5}, step=1)
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hwprofiles.errors import HwProfilesError

EXTRA = "pip install 'hwprofiles[tracking]'"

# name -> "module:class" of its Tracker, imported only when such a tracker is opened
TRACKERS = {
    "mlflow": "hwprofiles.tracking.mlflow_tracker:MLflowTracker",
    "tensorboard": "hwprofiles.tracking.tensorboard_tracker:TensorBoardTracker",
}


class Tracker(Protocol):
    """One run in an experiment tracker."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """The run's settings (a training config, an evaluation's profiles and samples)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Numbers by name; ``step`` orders a series (the epoch, a grid point)."""

    def log_artifact(self, path: str | Path, folder: str = "") -> None:
        """A file the run wrote (a checkpoint, a plot), kept with the run under ``folder``."""

    def log_text(self, text: str, name: str) -> None:
        """A document of the run (a result grid as JSON) under ``name``."""

    def close(self, failed: bool = False) -> None:
        """End the run, marked as failed if ``failed``."""


@dataclass(frozen=True)
class RunInfo:
    """What a tracker is told of the run it opens.

    Attributes:
        name: the run's name (a checkpoint's stem, ``eval``, ``sweep-noise-pcm``).
        uri: where MLflow records (``--log-uri``); None: ``$MLFLOW_TRACKING_URI`` or the
            file store ``hwprofiles-out/mlruns``.
        out_dir: the run's output folder; TensorBoard writes its event files into
            ``out_dir/tensorboard/<name>``.
        tags: labels of the run (the command that made it).
    """

    name: str
    uri: str | None
    out_dir: Path
    tags: dict[str, str] = field(default_factory=dict)


class Trackers:
    """Several trackers as one: each call goes to every one of them."""

    def __init__(self, trackers: Sequence[Tracker] = ()) -> None:
        self.trackers = list(trackers)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def log_params(self, params: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for tracker in self.trackers:
            tracker.log_metrics(metrics, step)

    def log_artifact(self, path: str | Path, folder: str = "") -> None:
        for tracker in self.trackers:
            tracker.log_artifact(path, folder)

    def log_text(self, text: str, name: str) -> None:
        for tracker in self.trackers:
            tracker.log_text(text, name)

    def close(self, failed: bool = False) -> None:
        for tracker in self.trackers:
            tracker.close(failed)

    def log_epoch(self, entry: Mapping[str, float]) -> None:
        """One epoch of the training history (the ``on_epoch`` of :func:`hwprofiles.train.train`):
        its losses and accuracies, with the epoch as the step."""
        self.log_metrics({k: float(v) for k, v in entry.items() if k != "epoch"}, step=int(entry["epoch"]))


def parse_kinds(values: Sequence[str] | None) -> list[str]:
    """The tracker names of ``--log`` (repeatable, or a comma list), in order, once each.

    Raises:
        HwProfilesError: a name that is no tracker, with the names there are.
    """
    kinds: list[str] = []
    for value in values or []:
        for name in (part.strip().lower() for part in value.split(",")):
            if name and name not in TRACKERS:
                raise HwProfilesError(f"--log {name}: no such tracker; use {' or '.join(TRACKERS)}")
            if name and name not in kinds:
                kinds.append(name)
    return kinds


def open_tracker(kind: str, run: RunInfo) -> Tracker:
    """The tracker ``kind`` of :data:`TRACKERS`, opened for ``run``."""
    module, _, name = TRACKERS[kind].partition(":")
    tracker: Tracker = getattr(importlib.import_module(module), name)(run)
    return tracker


@contextmanager
def start(
    kinds: Sequence[str],
    *,
    run_name: str,
    uri: str | None = None,
    out_dir: str | Path = "hwprofiles-out",
    tags: Mapping[str, str] | None = None,
) -> Iterator[Trackers]:
    """Open one run in each tracker of ``kinds`` (none: an empty :class:`Trackers`, which
    records nothing); close them when the block ends, as failed if it raised.

    Raises:
        HwProfilesError: a tracker's package is missing (naming the extra), or its store
            cannot be opened; raised before the block runs.
    """
    run = RunInfo(run_name, uri, Path(out_dir), dict(tags or {}))
    trackers = Trackers()
    try:
        for kind in parse_kinds(kinds):
            trackers.trackers.append(open_tracker(kind, run))
    except BaseException:
        trackers.close(failed=True)  # those already opened are not left running
        raise
    try:
        yield trackers
    except BaseException as exc:
        trackers.close(failed=not succeeded(exc))
        raise
    trackers.close()


def succeeded(exc: BaseException) -> bool:
    """Whether ``exc`` ends a command that did its work: an exit with status 0 (click's or ``sys.exit``)."""
    code = getattr(exc, "exit_code", getattr(exc, "code", 1) if isinstance(exc, SystemExit) else 1)
    return code in (0, None)


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as one level of ``a.b`` names; lists as their text (what trackers take)."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_params(value, f"{name}."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat
