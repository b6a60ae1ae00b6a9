"""A run in MLflow, through its client (works with ``mlflow-skinny`` alone).

Where it records: ``--log-uri``, else MLflow's own ``MLFLOW_TRACKING_URI``, else one file
store for every command, ``hwprofiles-out/mlruns`` (so runs of train, eval and sweep sit side
by side). MLflow 3 keeps its file store only when
``MLFLOW_ALLOW_FILE_STORE`` is set, and its default ``sqlite:`` store needs SQLAlchemy,
which ``mlflow-skinny`` lacks; so for a ``file:`` store (ours or the user's) this sets
``MLFLOW_ALLOW_FILE_STORE=true`` unless the environment says otherwise. The experiment
is ``$MLFLOW_EXPERIMENT_NAME``, else ``hwprofiles``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwprofiles.errors import HwProfilesError
from hwprofiles.tracking import EXTRA, RunInfo, flat_params

if TYPE_CHECKING:  # pragma: no cover
    from mlflow import MlflowClient

EXPERIMENT = "hwprofiles"
STORE = Path("hwprofiles-out") / "mlruns"
PARAM_LENGTH = 6000  # MLflow refuses longer parameter values
BATCH = {"params": 100, "metrics": 1000}  # and more of them in one request


def default_uri(run: RunInfo) -> str:
    """``--log-uri``, ``$MLFLOW_TRACKING_URI``, or the file store :data:`STORE`."""
    if run.uri:
        return run.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return STORE.resolve().as_uri()


def metric_name(name: str) -> str:
    """``name`` with what MLflow refuses in a metric name (``:``, ``..``, a leading ``/``) replaced."""
    name = re.sub(r"[^/\w.\- ]", "_", name).replace("..", "_.")
    return re.sub(r"/+", "/", name).strip("/") or "_"


class MLflowTracker:
    """One MLflow run, started when made and ended by :meth:`close`."""

    def __init__(self, run: RunInfo) -> None:
        try:
            from mlflow import MlflowClient
            from mlflow.exceptions import MlflowException
        except ImportError:
            raise HwProfilesError(f"--log mlflow needs MLflow: {EXTRA}") from None
        uri = default_uri(run)
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        try:
            self.client: MlflowClient = MlflowClient(tracking_uri=uri)
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            self.run_id: str = self.client.create_run(experiment_id, run_name=run.name, tags=run.tags).info.run_id
        except ImportError as exc:
            raise HwProfilesError(
                f"--log-uri {uri}: this MLflow store needs {exc.name or exc}, which mlflow-skinny lacks: "
                "pip install mlflow, or give a file: URI"
            ) from None
        except (MlflowException, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HwProfilesError(f"--log-uri {uri}: MLflow cannot record there: {first}") from None
        self.uri = uri

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        values = [Param(k, str(v)[:PARAM_LENGTH]) for k, v in flat_params(params).items()]
        for i in range(0, len(values), BATCH["params"]):
            self.client.log_batch(self.run_id, params=values[i : i + BATCH["params"]])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(metric_name(k), float(v), now, step or 0) for k, v in metrics.items()]
        for i in range(0, len(values), BATCH["metrics"]):
            self.client.log_batch(self.run_id, metrics=values[i : i + BATCH["metrics"]])

    def log_artifact(self, path: str | Path, folder: str = "") -> None:
        self.client.log_artifact(self.run_id, str(path), folder or None)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)

    def close(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
