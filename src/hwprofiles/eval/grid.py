"""Many evaluations at once: plan every chip instance, read what the store holds,
measure the rest on an executor (in this process, or as Ray tasks), record.

An :class:`EvalRequest` is one model under one profile setting over K chip
instances. :func:`run_requests` looks each chip instance up in the results store by
its content key, sends only the missing ones out (one task per request), and, as the
one writer of the store, records every result the moment it arrives: a grid that is
interrupted and started again measures only what is still missing, and a task that
fails for a reason of its own is reported by name without stopping the others.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict, cast

import torch
import torch.nn as nn

from hwprofiles.errors import HwProfilesError
from hwprofiles.eval.keys import EvalKey, batches_digest, loader_identity, model_digest, profile_digest
from hwprofiles.eval.summary import EvaluationResult, summarize
from hwprofiles.executors import Executor, LocalExecutor
from hwprofiles.nn.calibration import needs_calibration
from hwprofiles.profiles import Profile, load_profile

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.results import ResultsStore


@dataclass
class EvalRequest:
    """One model under one profile setting, over chip seeds ``0 .. samples-1``.

    Everything a worker needs travels with it: the float model, the test batches, the
    calibration inputs and the profile as it acts.
    """

    model: nn.Module
    batches: list[Any]
    profile: Profile
    t_inference_s: float
    samples: int
    calibration: list[torch.Tensor] = field(default_factory=list)
    only_layer: str | None = None
    device: str = "cpu"
    labels: dict[str, Any] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    keys: list[EvalKey] = field(default_factory=list)
    bn_batches: list[torch.Tensor] = field(default_factory=list)  # batch norm re-estimated on each chip

    @property
    def name(self) -> str:
        """How a failure of this request is reported."""
        who = self.labels.get("checkpoint") or self.labels.get("model") or "model"
        where = f", layer {self.only_layer}" if self.only_layer else ""
        return (
            f"{who} under {self.profile.name} (scale {self.profile.noise_scale:g}, t {self.t_inference_s:g} s{where})"
        )

    def result(self, accuracies: Sequence[float], measured: int) -> EvaluationResult:
        """The result of this request, given every chip's accuracy in seed order and how
        many of them were measured (the others came from the results store)."""
        values = tuple(accuracies)
        s = summarize(values)
        return EvaluationResult(
            s.mean,
            s.std,
            s.ci_low,
            s.ci_high,
            s.n,
            accuracies=values,
            seeds=tuple(range(self.samples)),
            keys=tuple(k.id for k in self.keys),
            profile=self.profile.name,
            noise_scale=float(self.profile.noise_scale),
            t_inference_s=self.t_inference_s,
            hashes=dict(self.hashes),
            cached=self.samples - measured,
        )

    # A remote executor sends these parts once and shares them between the tasks that use
    # them (see hwprofiles.executors.Shareable): one model is often evaluated many times.
    def large_parts(self) -> dict[str, Any]:
        """The parts worth sending once per run: the model, the test batches, the calibration inputs."""
        return {
            "model": self.model,
            "batches": self.batches,
            "calibration": self.calibration,
            "bn_batches": self.bn_batches,
        }

    def with_parts(self, parts: dict[str, Any]) -> EvalRequest:
        """A copy with ``parts`` (named as in :meth:`large_parts`) in place of its own."""
        return replace(self, **parts)


def _inputs(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


_loader_batches: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def _test_batches(data: Iterable[Any]) -> tuple[list[Any], str, int]:
    """The test batches as a list (read once, kept), their content hash and batch size."""
    if isinstance(data, torch.utils.data.DataLoader):
        digest, batch_size = loader_identity(data)
        batches = _loader_batches.get(data)
        if batches is None:
            batches = _loader_batches[data] = list(data)
        return batches, digest, batch_size
    batches = list(data)
    return batches, batches_digest(batches), 0


def prepare(
    model: nn.Module,
    data: Iterable[Any],
    profile: Profile | str,
    *,
    samples: int = 5,
    calibration: Iterable[Any] | None = None,
    noise_scale: float | None = None,
    t_inference_s: float | None = None,
    only_layer: str | None = None,
    labels: dict[str, Any] | None = None,
    description: dict[str, Any] | None = None,
    model_hash: str | None = None,
    device: str | torch.device = "cpu",
    bn_recalibration: Iterable[Any] | None = None,
) -> EvalRequest:
    """Check the arguments of an evaluation and compute its content keys
    (see :func:`hwprofiles.evaluate` for the arguments)."""
    from hwprofiles.nn.convert import noisy_layer_names

    if samples < 1:
        raise ValueError(f"samples={samples}: evaluate at least one chip instance")
    profile = load_profile(profile)
    if noise_scale is not None:
        profile = profile.with_noise_scale(noise_scale)
    t_s = float(profile.t_inference_s if t_inference_s is None else t_inference_s)
    if not (math.isfinite(t_s) and t_s >= 0):
        raise ValueError(f"t_inference_s={t_inference_s}: the time since programming must be a finite number >= 0")
    calibration_inputs: list[torch.Tensor] = []
    if needs_calibration(profile):
        if calibration is None:
            raise HwProfilesError(
                f"profile '{profile.name}' sets its DAC input bounds or ADC ranges from data: pass calibration= "
                "a few training batches (never the test data)."
            )
        calibration_inputs = [_inputs(b) for b in calibration]
    if only_layer is not None:
        names = noisy_layer_names(model, profile)
        if only_layer not in names:
            raise HwProfilesError(f"no noisy layer named '{only_layer}'; the layers are: {', '.join(names)}")
    batches, data_hash, batch_size = _test_batches(data)
    hashes = {
        "model": model_hash or model_digest(model, description),
        "profile": profile_digest(profile, t_s),
        "data": data_hash,
        "calibration": batches_digest(calibration_inputs) if calibration_inputs else "",
    }
    bn_inputs = [] if bn_recalibration is None else [_inputs(b) for b in bn_recalibration]
    if bn_recalibration is not None and not bn_inputs:
        raise ValueError("bn_recalibration needs at least one batch of training inputs")
    hashes["bn_recalibration"] = batches_digest(bn_inputs) if bn_inputs else ""
    first = EvalKey(
        hashes["model"],
        hashes["profile"],
        hashes["data"],
        hashes["calibration"],
        seed=0,
        layer=only_layer or "",
        batch_size=batch_size,
        device=torch.device(device).type,
        bn_recalibration=hashes["bn_recalibration"],
    )
    keys = [replace(first, seed=seed) for seed in range(samples)]
    return EvalRequest(
        model,
        batches,
        profile,
        t_s,
        samples,
        calibration_inputs,
        only_layer,
        str(device),
        {"eval_profile": profile.name, **(labels or {})},
        hashes,
        keys,
        bn_batches=bn_inputs,
    )


def measure(
    request: EvalRequest,
    seeds: Sequence[int],
    on_chip: Callable[[int, float], None] | None = None,
) -> tuple[list[float], float]:
    """Accuracy of each chip instance in ``seeds``, and the seconds it took: the work
    an executor runs (in this process or on a Ray worker). ``on_chip(seed, accuracy)``,
    where the caller can take it (in this process), hears of each chip as it is measured."""
    from hwprofiles.nn.batchnorm import recalibrate_batchnorm
    from hwprofiles.nn.convert import calibrate, noisy_layer_names, program, to_noisy
    from hwprofiles.train.loop import accuracy

    started = time.perf_counter()
    exclude: list[str] = []
    if request.only_layer is not None:
        exclude = [n for n in noisy_layer_names(request.model, request.profile) if n != request.only_layer]
    noisy = to_noisy(request.model, request.profile, exclude=exclude).to(request.device)
    if request.calibration:
        calibrate(noisy, [x.to(request.device) for x in request.calibration])
    accuracies = []
    bn_batches = [x.to(request.device) for x in request.bn_batches]
    for seed in seeds:
        program(noisy, seed=seed, t_inference_s=request.t_inference_s)
        if bn_batches:  # on this chip, as the chip would (statistics reset each time)
            recalibrate_batchnorm(noisy, bn_batches)
        # accuracy reads any iterable of (inputs, labels) batches, a list among them
        accuracies.append(accuracy(noisy, cast(Any, request.batches), request.device))
        if on_chip is not None:
            on_chip(seed, accuracies[-1])
    return accuracies, time.perf_counter() - started


@dataclass
class GridFailure:
    """A request that failed for a reason of its own; the others went on."""

    name: str
    error: str


@dataclass
class GridStats:
    """Where the time of :func:`run_requests` went."""

    requests: int = 0
    chips_cached: int = 0
    chips_measured: int = 0
    compute_s: float = 0.0  # summed over tasks, as the workers measured it
    wall_s: float = 0.0
    failures: list[GridFailure] = field(default_factory=list)

    def summary(self) -> str:
        parallel = self.compute_s / self.wall_s if self.wall_s > 0 else 0.0
        line = (
            f"{self.requests} evaluations: {self.chips_measured} chip instances measured, "
            f"{self.chips_cached} read from the results store; {self.compute_s:.1f} s of compute in "
            f"{self.wall_s:.1f} s wall ({parallel:.2f}x)"
        )
        return line + (f"; {len(self.failures)} failed" if self.failures else "")


class _Counts:
    """done / running / failed, for a progress bar's text."""

    def __init__(self, on_progress: Callable[[int, int, int], None] | None) -> None:
        self.done = self.running = self.failed = 0
        self.on_progress = on_progress

    def report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.done, self.running, self.failed)


class GridOptions(TypedDict, total=False):
    """Where and how a grid runs: the keyword arguments of :func:`run_requests`, for
    functions that build a grid and pass them on."""

    store: ResultsStore | None
    executor: Executor | None
    on_sample: Callable[[], None] | None
    on_progress: Callable[[int, int, int], None] | None
    stats: GridStats | None


def run_requests(
    requests: Sequence[EvalRequest],
    *,
    store: ResultsStore | None = None,
    executor: Executor | None = None,
    on_sample: Callable[[], None] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    stats: GridStats | None = None,
) -> list[EvaluationResult | None]:
    """Evaluate every request; a request that failed gives ``None`` (and a
    :class:`GridFailure` in ``stats``) unless it is the only one, whose error is raised.

    Args:
        requests: from :func:`prepare`.
        store: results store; chip instances found there are not measured again.
        executor: where the work runs (default: this process, in order).
        on_sample: called once per chip instance, measured or read (progress bars).
        on_progress: called with (done, running, failed) requests as they change.
        stats: filled with counts, times and failures.
    """
    executor = executor or LocalExecutor()
    stats = stats if stats is not None else GridStats()
    started = time.perf_counter()
    found: list[dict[int, float]] = []
    for request in requests:
        values: dict[int, float] = {}
        if store is not None:
            for key in request.keys:
                value = store.get_eval(key)
                if value is not None:
                    values[key.seed] = value
        found.append(values)
        stats.chips_cached += len(values)
        for _ in values:
            if on_sample is not None:
                on_sample()
    todo = [(i, [k.seed for k in r.keys if k.seed not in found[i]]) for i, r in enumerate(requests)]
    todo = [(i, seeds) for i, seeds in todo if seeds]
    counts = _Counts(on_progress)
    counts.done = len(requests) - len(todo)
    errors: dict[int, BaseException] = {}

    def started_one(_: int) -> None:
        counts.running += 1
        counts.report()

    def record(index: int, seed: int, value: float) -> None:
        request = requests[index]
        found[index][seed] = value
        if store is not None:  # the driver is the only writer
            store.put_eval(
                request.keys[seed],
                value,
                request.labels,
                noise_scale=float(request.profile.noise_scale),
                t_inference_s=request.t_inference_s,
            )
        if on_sample is not None:
            on_sample()

    def finished(task: int, result: tuple[list[float], float] | None, error: BaseException | None) -> None:
        index, seeds = todo[task]
        request = requests[index]
        counts.running = max(0, counts.running - 1)
        if error is not None:
            counts.failed += 1
            errors[index] = error
            stats.failures.append(GridFailure(request.name, str(error) or type(error).__name__))
            counts.report()
            return
        assert result is not None
        accuracies, seconds = result
        stats.compute_s += seconds
        stats.chips_measured += len(seeds)
        for seed, value in zip(seeds, accuracies):
            if seed not in found[index]:  # not recorded as it was measured
                record(index, seed, value)
        counts.done += 1
        counts.report()

    counts.report()
    # In this process each chip is stored the moment it is measured, so an interrupt loses
    # at most one; a remote task reports its chips together when it ends.
    in_process = executor.name == "local"
    tasks = [(requests[i], seeds, partial(record, i) if in_process else None) for i, seeds in todo]
    executor.map(measure, tasks, finished, devices=[requests[i].device for i, _ in todo], on_start=started_one)
    stats.requests += len(requests)
    stats.wall_s += time.perf_counter() - started
    if len(requests) == 1 and errors:
        raise errors[0]
    measured = dict(todo)
    return [
        None if i in errors else request.result([found[i][k.seed] for k in request.keys], len(measured.get(i, [])))
        for i, request in enumerate(requests)
    ]


def run_request(
    request: EvalRequest, *, store: ResultsStore | None = None, on_sample: Callable[[], None] | None = None
) -> EvaluationResult:
    """Evaluate one request in this process (see :func:`run_requests`); its failure is raised."""
    result = run_requests([request], store=store, on_sample=on_sample)[0]
    assert result is not None  # a single request's failure is raised
    return result
