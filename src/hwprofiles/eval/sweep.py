"""Sweeps: accuracy against noise scale, against time since programming, and per layer.

The robustness figure is the *midpoint*: the noise level at which accuracy falls
halfway from the clean accuracy to chance, interpolated linearly in log(noise
scale) between the two grid points around it (the Walking Noise study's metric).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from hwprofiles.errors import HwProfilesError
from hwprofiles.eval.chips import checkpoint_request
from hwprofiles.eval.grid import EvalRequest, GridStats, run_requests
from hwprofiles.eval.labels import relabel, slug
from hwprofiles.eval.summary import EvaluationResult
from hwprofiles.eval.trained import Trained
from hwprofiles.profiles import Profile, load_profile
from hwprofiles.results import ResultsStore

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Required, Unpack

    from hwprofiles.executors import Executor

# Time since programming: 1 s, 1 h, 1 day, 1 month (30 d), 1 year (365 d).
DRIFT_TIMES_S = (1.0, 3600.0, 86_400.0, 2_592_000.0, 31_536_000.0)
SWEEPS = ("noise", "time", "layer")


def log_grid(low: float = 1e-2, high: float = 1e2, points: int = 17) -> list[float]:
    """``points`` values spaced evenly in log from ``low`` to ``high`` (the study: 1e-2..1e2, 17).

    >>> [round(v, 3) for v in log_grid(0.1, 10, 3)]
    [0.1, 1.0, 10.0]
    """
    if not (low > 0 and high > 0 and math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"a log grid needs finite bounds above 0 (got {low}, {high})")
    if points < 2:
        return [float(low)]
    return [float(v) for v in np.logspace(math.log10(low), math.log10(high), points)]


def midpoint(scales: Sequence[float], accuracies: Sequence[float], clean: float, chance: float) -> float | None:
    """The noise scale where accuracy first falls below halfway from ``clean`` to ``chance``.

    Interpolated linearly in log(scale) between the last grid point at or above the
    half level and the first below it. ``None`` when the curve never falls that far
    (or starts below it).

    >>> round(midpoint([0.1, 1.0, 10.0], [0.9, 0.7, 0.1], clean=0.9, chance=0.1), 3)  # 10 ** (1/3)
    2.154
    """
    level = chance + (clean - chance) / 2.0
    for i in range(len(scales) - 1):
        a0, a1 = accuracies[i], accuracies[i + 1]
        if a0 >= level > a1:
            l0, l1 = math.log10(scales[i]), math.log10(scales[i + 1])
            frac = (a0 - level) / (a0 - a1)
            return 10 ** (l0 + frac * (l1 - l0))
    return None


def sweep_points(trained: Trained, profile: Profile, over: str) -> list[Any]:
    """The default grid of a sweep: noise scales, times since programming, or layer names."""
    from hwprofiles.nn.convert import noisy_layer_names

    if over == "noise":
        return log_grid()
    if over == "time":
        return list(DRIFT_TIMES_S)
    return noisy_layer_names(trained.model, profile)


def sweep_requests(
    trained: Trained,
    profile: Profile,
    over: str,
    points: Sequence[Any],
    loaders: Any,
    *,
    samples: int,
    test_set: str,
    device: str = "cpu",
    recalibrate_bn: bool = False,
) -> list[EvalRequest]:
    """One evaluation request per grid point of a sweep over ``over``."""
    axis = {"noise": "noise_scale", "time": "t_inference_s"}.get(over, "only_layer")
    return [
        checkpoint_request(
            trained,
            profile,
            loaders,
            samples=samples,
            test_set=test_set,
            device=device,
            recalibrate_bn=recalibrate_bn,
            **{axis: x},
        )  # fmt: skip
        for x in points
    ]


class SweepOptions(TypedDict, total=False):
    """The keyword arguments of :func:`sweep_noise`, :func:`sweep_time` and :func:`sweep_layers`.

    Attributes:
        samples: chip instances per grid point.
        store: results store; chip instances found there are not measured again.
        test_set: a label for the test data.
        on_sample: called once per chip instance (progress bars).
        device: torch device to run on (default cpu).
        executor: where the evaluations run (default: this process).
    """

    samples: Required[int]
    store: Required[ResultsStore | None]
    test_set: Required[str]
    on_sample: Callable[[], None] | None
    device: str
    executor: Executor | None


def _sweep(
    trained: Trained, profile: Profile, over: str, points: Sequence[Any], loaders: Any, options: SweepOptions
) -> list[tuple[Any, EvaluationResult]]:
    """Every point of one model's sweep; a point that fails fails the sweep, naming it."""
    device = options.get("device", "cpu")
    requests = sweep_requests(
        trained, profile, over, points, loaders, samples=options["samples"], test_set=options["test_set"], device=device
    )
    stats = GridStats()
    results = run_requests(
        requests,
        store=options["store"],
        executor=options.get("executor"),
        on_sample=options.get("on_sample"),
        stats=stats,
    )
    if stats.failures:
        raise HwProfilesError("; ".join(f"{f.name}: {f.error}" for f in stats.failures))
    return [(x, r) for x, r in zip(points, results) if r is not None]


def sweep_noise(
    trained: Trained, profile: Profile, scales: Sequence[float], loaders: Any, **options: Unpack[SweepOptions]
) -> list[tuple[float, EvaluationResult]]:
    """Accuracy at each noise scale."""
    return _sweep(trained, profile, "noise", scales, loaders, options)


def sweep_time(
    trained: Trained, profile: Profile, times_s: Sequence[float], loaders: Any, **options: Unpack[SweepOptions]
) -> list[tuple[float, EvaluationResult]]:
    """Accuracy at each time since programming (drifting profiles)."""
    return _sweep(trained, profile, "time", times_s, loaders, options)


def sweep_layers(
    trained: Trained, profile: Profile, loaders: Any, **options: Unpack[SweepOptions]
) -> dict[str, EvaluationResult]:
    """Accuracy with noise in one layer at a time (Walking Noise), at the profile's noise scale."""
    layers = sweep_points(trained, profile, "layer")
    return dict(_sweep(trained, profile, "layer", layers, loaders, options))


@dataclass
class SweepReport:
    """What :func:`run_sweep` measured, per model (by unique label)."""

    profile: str
    over: str
    samples: int
    noise_scale: float
    chance: float
    curves: dict[str, list[tuple[float, EvaluationResult]]] = field(default_factory=dict)
    layers: dict[str, dict[str, EvaluationResult]] = field(default_factory=dict)
    clean: dict[str, float] = field(default_factory=dict)
    midpoints: dict[str, float | None] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        models: dict[str, Any] = {}
        for label, path in self.checkpoints.items():
            entry: dict[str, Any] = {"checkpoint": path}
            if self.over == "layer":
                entry["layers"] = {layer: s.as_dict() for layer, s in self.layers[label].items()}
            else:
                entry["clean_accuracy"] = self.clean.get(label)
                entry["midpoint"] = self.midpoints.get(label)
                entry["points"] = [{"x": x, **s.as_dict()} for x, s in self.curves[label]]
            models[label] = entry
        return {
            "profile": self.profile,
            "over": self.over,
            "samples": self.samples,
            "noise_scale": self.noise_scale,
            "models": models,
            "failures": self.failures,
        }

    def write(self, out_dir: str | Path, dataset: str = "") -> dict[str, Path]:
        """The JSON report and the plots (one per model for a layer sweep)."""
        from hwprofiles.eval import plots
        from hwprofiles.io import write_text

        out = Path(out_dir)
        stem = f"sweep-{self.over}-{self.profile}"
        paths = {"json": write_text(out / f"{stem}.json", json.dumps(self.to_dict(), indent=2))}
        if self.over == "layer":
            for label, values in self.layers.items():
                paths[label] = plots.plot_bars(
                    values,
                    out / f"{stem}-{slug(label)}.png",
                    title=f"{label}: noise in one layer at a time ({self.profile}, scale {self.noise_scale:g})",
                )
        else:
            xlabel = f"noise scale of {self.profile}" if self.over == "noise" else "time since programming (s)"
            paths["png"] = plots.plot_curves(
                self.curves,
                out / f"{stem}.png",
                xlabel=xlabel,
                title=f"{dataset}: accuracy under {self.profile}".lstrip(": "),
                chance=self.chance,
                midpoints=self.midpoints,
            )
        return paths


def run_sweep(
    models: Sequence[Trained],
    profile: Profile | str,
    loaders: Any,
    *,
    over: str = "noise",
    grid: Sequence[float] | None = None,
    noise_scale: float | None = None,
    samples: int = 5,
    store: ResultsStore | None = None,
    test_set: str = "test",
    chance: float = 0.1,
    on_sample: Callable[[], None] | None = None,
    device: str = "cpu",
    recalibrate_bn: bool = False,
    executor: Executor | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    stats: GridStats | None = None,
) -> SweepReport:
    """Sweep every model over noise scale (with its midpoint), time since programming, or layers.

    The whole grid (every model, every point, and each model's noise-free accuracy)
    goes to the executor at once. Models that share a label (two QAT checkpoints) are
    relabelled after what sets them apart, so none is dropped. A point that fails is
    left out of its curve and named in ``report.failures``; the others go on.

    Args:
        models: trained models (:func:`hwprofiles.eval.load_trained`).
        profile: the profile swept (its noise scale is the one used by time and layer sweeps).
        loaders: (train loader, test loader).
        over: ``noise``, ``time`` or ``layer``.
        grid: noise scales (default: :func:`log_grid`) or times in s (default: :data:`DRIFT_TIMES_S`).
        noise_scale: the profile's noise scale in time and layer sweeps (default: its own).
        samples: chip instances per point.
        store: results store; chip instances found there are not measured again.
        test_set: a label for the test data.
        chance: the accuracy of guessing, the floor of the midpoint.
        on_sample, on_progress, stats: as :func:`hwprofiles.eval.grid.run_requests` takes them.
        device: torch device to run on.
        recalibrate_bn: re-estimate batch norm on each chip instance (see :func:`checkpoint_request`).
        executor: where the evaluations run (default: this process).

    Raises:
        ValueError: ``over`` is not a sweep.
    """
    if over not in SWEEPS:
        raise ValueError(f"unknown sweep {over!r}: use {', '.join(SWEEPS)}")
    prof = load_profile(profile)
    if noise_scale is not None:
        prof = prof.with_noise_scale(noise_scale)
    models = relabel(models)
    report = SweepReport(
        prof.name, over, samples, float(prof.noise_scale), chance, checkpoints={m.label: str(m.path) for m in models}
    )
    plan: list[tuple[Trained, list[Any], int]] = []  # model, its points, where its requests start
    requests: list[EvalRequest] = []
    for trained in models:
        points = list(grid) if grid is not None and over != "layer" else sweep_points(trained, prof, over)
        plan.append((trained, points, len(requests)))
        requests += sweep_requests(
            trained,
            prof,
            over,
            points,
            loaders,
            samples=samples,
            test_set=test_set,
            device=device,
            recalibrate_bn=recalibrate_bn,
        )
        if over == "noise":
            requests.append(checkpoint_request(trained, "ideal", loaders, samples=1, test_set=test_set, device=device))
    stats = stats if stats is not None else GridStats()
    results = run_requests(
        requests, store=store, executor=executor, on_sample=on_sample, on_progress=on_progress, stats=stats
    )
    report.failures = [f"{f.name}: {f.error}" for f in stats.failures]
    for trained, points, start in plan:
        got = [(x, r) for x, r in zip(points, results[start : start + len(points)]) if r is not None]
        if over == "layer":
            report.layers[trained.label] = dict(got)
            continue
        report.curves[trained.label] = got
        if over == "noise":
            clean = results[start + len(points)]
            if clean is not None:
                report.clean[trained.label] = clean.mean
                report.midpoints[trained.label] = midpoint(
                    [x for x, _ in got], [r.mean for _, r in got], clean.mean, chance
                )
    return report
