"""The result grids of ``eval``, ``sweep`` and ``transfer``, recorded with a tracker:
each cell's numbers as metrics, the whole report as a JSON document.

Read from the reports' own JSON forms (what ``--json`` and the output folders hold), so
a tracker records the same numbers the files do.

Metric names: ``eval/<model>/<profile>/mean`` (and ``std``, ``ci_low``, ``ci_high``);
``sweep/<model>/accuracy`` with the grid point's index as the step, and beside it the
point's ``noise_scale`` or ``t_inference_s``; ``sweep/<model>/<layer>/mean`` for a layer
sweep; ``transfer/<trained>/<evaluated>/mean`` and ``.../efficiency``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.eval.chips import EvalReport
    from hwprofiles.eval.sweep import SweepReport
    from hwprofiles.eval.transfer_report import TransferResult
    from hwprofiles.tracking import Tracker

STATS = ("mean", "std", "ci_low", "ci_high")


def _stats(prefix: str, cell: dict[str, Any]) -> dict[str, float]:
    return {f"{prefix}/{k}": float(cell[k]) for k in STATS if cell.get(k) is not None}


def log_evaluation(tracker: Tracker, report: EvalReport) -> None:
    """Every model under every profile: its mean accuracy over chips and the interval."""
    rows = json.loads(report.to_json())
    metrics: dict[str, float] = {}
    for row in rows:
        metrics.update(_stats(f"eval/{row['trained']}/{row['eval_profile']}", row))
    tracker.log_metrics(metrics)
    tracker.log_text(json.dumps(rows, indent=2), "eval.json")


def log_sweep(tracker: Tracker, report: SweepReport) -> None:
    """Each model's accuracy at each grid point (the point's index is the step), its clean
    accuracy and midpoint; or, for a layer sweep, its accuracy per noisy layer."""
    data = report.to_dict()
    x_name = "noise_scale" if report.over == "noise" else "t_inference_s"
    for label, entry in data["models"].items():
        if report.over == "layer":
            metrics: dict[str, float] = {}
            for layer, cell in entry["layers"].items():
                metrics.update(_stats(f"sweep/{label}/{layer}", cell))
            tracker.log_metrics(metrics)
            continue
        for step, point in enumerate(entry["points"]):
            tracker.log_metrics({f"sweep/{label}/accuracy": point["mean"], f"sweep/{label}/{x_name}": point["x"]}, step)
        ends = {"clean_accuracy": entry.get("clean_accuracy"), "midpoint": entry.get("midpoint")}
        tracker.log_metrics({f"sweep/{label}/{k}": v for k, v in ends.items() if v is not None})
    tracker.log_text(json.dumps(data, indent=2), f"sweep-{report.over}-{report.profile}.json")


def log_transfer(tracker: Tracker, result: TransferResult) -> None:
    """Every cell of the transfer matrix: accuracy (with its interval) and efficiency."""
    metrics: dict[str, float] = {}
    efficiency = result.efficiency()
    for i, row in enumerate(result.rows):
        for j, col in enumerate(result.cols):
            metrics.update(_stats(f"transfer/{row}/{col}", result.cells[(row, col)].as_dict()))
            if efficiency[i][j] is not None:
                metrics[f"transfer/{row}/{col}/efficiency"] = float(efficiency[i][j])  # type: ignore[arg-type]
    tracker.log_metrics(metrics)
    tracker.log_text(result.to_json(), "transfer.json")
