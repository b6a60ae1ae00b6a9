"""Accuracy over K chip instances, with a confidence interval.

Each instance is one :func:`hwprofiles.program` with seed ``i``. With a results
store, every instance is stored under its content key
(:class:`~hwprofiles.eval.keys.EvalKey`) as soon as it is measured, so an
interrupted evaluation resumes where it stopped and a changed model, profile or
data set is measured afresh.

    >>> import torch, torch.nn as nn, hwprofiles
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> data = [(torch.randn(8, 4), torch.randint(0, 2, (8,)))]
    >>> result = hwprofiles.evaluate(model, data, "gaussian-additive", samples=3)
    >>> result.n, len(result.accuracies), 0.0 <= result.ci_low <= result.mean <= result.ci_high <= 1.0
    (3, 3, True)

The summaries live in :mod:`hwprofiles.eval.summary` and the models in
:mod:`hwprofiles.eval.trained`; their names are importable from here as well.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import torch
import torch.nn as nn

from hwprofiles.eval.grid import EvalRequest, prepare, run_request, run_requests
from hwprofiles.eval.summary import EvaluationResult, Summary, summarize
from hwprofiles.eval.trained import Trained, load_trained, load_weights, test_set_id
from hwprofiles.profiles import Profile

if TYPE_CHECKING:  # pragma: no cover
    from typing_extensions import Unpack

    from hwprofiles.eval.grid import GridOptions
    from hwprofiles.results import ResultsStore

__all__ = [
    "CALIBRATION_BATCHES",
    "CheckpointSettings",
    "EvalReport",
    "EvaluationResult",
    "Summary",
    "Trained",
    "checkpoint_request",
    "evaluate",
    "evaluate_checkpoint",
    "evaluate_models",
    "load_trained",
    "load_weights",
    "summarize",
    "test_set_id",
]

CALIBRATION_BATCHES = 4
BN_RECALIBRATION_BATCHES = 4  # training batches each chip re-estimates batch norm on (--recalibrate-bn)


class EvalSettings(TypedDict, total=False):
    """How one evaluation runs: the keyword arguments of :func:`hwprofiles.eval.grid.prepare` (and so of
    :func:`hwprofiles.evaluate`), each described there."""

    samples: int
    calibration: Iterable[Any] | None
    noise_scale: float | None
    t_inference_s: float | None
    only_layer: str | None
    labels: dict[str, Any] | None
    description: dict[str, Any] | None
    model_hash: str | None
    device: str | torch.device
    bn_recalibration: Iterable[Any] | None


def evaluate(
    model: nn.Module,
    data: Iterable[Any],
    profile: Profile | str,
    *,
    store: ResultsStore | None = None,
    on_sample: Callable[[], None] | None = None,
    **settings: Unpack[EvalSettings],
) -> EvaluationResult:
    """Accuracy of any float model under ``profile`` over ``samples`` chip instances.

    The model is converted with :func:`hwprofiles.to_noisy` (a copy; ``model`` is not
    changed), calibrated on ``calibration`` when the profile calibrates its DAC input
    bounds, and programmed with seeds ``0 .. samples-1``. To run many evaluations at
    once, in parallel on Ray, see :mod:`hwprofiles.eval.grid`.

    Args:
        model: a float ``nn.Module`` whose outputs are class scores.
        data: the test data: an iterable of ``(inputs, labels)`` batches that can be
            iterated more than once (a DataLoader, a list; a generator is read once and kept).
        profile: a :class:`Profile`, a profile name or a profile file.
        store: a results store: chip instances already there are read, new ones written.
        on_sample: called after each chip instance (progress bars).

    Keyword Args:
        samples: number of chip instances (default 5).
        calibration: a few training batches (inputs, or ``(inputs, labels)``); needed
            when the profile's DAC bound is calibrated. Never the test data.
        noise_scale: override the profile's noise scale.
        t_inference_s: time since programming (default: the profile's).
        only_layer: put noise in this layer only (per-layer sensitivity).
        labels: label columns stored beside each number (checkpoint, model, method,
            train_profile, test_set); ``eval_profile`` defaults to the profile's name.
        description: how the model was built, hashed with its weights.
        model_hash: the model's content hash, if already computed.
        device: torch device to run on (default cpu).
        bn_recalibration: a few training batches on which every chip instance re-estimates
            the statistics of its batch-norm layers before it is measured
            (:func:`hwprofiles.recalibrate_batchnorm`); part of each result's key.

    Returns:
        An :class:`EvaluationResult`: mean, std, 95% interval, per-chip accuracies, keys.

    Raises:
        HwProfilesError: calibration data missing, or ``only_layer`` unknown.
        ValueError: ``samples`` < 1, or a non-finite or negative time.
    """
    return run_request(prepare(model, data, profile, **settings), store=store, on_sample=on_sample)


class CheckpointSettings(TypedDict, total=False):
    """How a trained model is evaluated: the keyword arguments of :func:`checkpoint_request`."""

    samples: int
    noise_scale: float | None
    t_inference_s: float | None
    test_set: str
    only_layer: str | None
    device: str
    recalibrate_bn: bool


def checkpoint_request(
    trained: Trained,
    profile: Profile | str,
    loaders: tuple[Any, Any],
    *,
    samples: int = 5,
    noise_scale: float | None = None,
    t_inference_s: float | None = None,
    test_set: str = "test",
    only_layer: str | None = None,
    device: str = "cpu",
    recalibrate_bn: bool = False,
) -> EvalRequest:
    """The evaluation of a trained model as a request for :func:`hwprofiles.eval.grid.run_requests`:
    calibrated on the first training batches, labelled with where the model came from.

    Args:
        trained: from :func:`load_trained`.
        profile: the evaluation profile (name, path or object).
        loaders: (train loader, test loader); the first training batches calibrate the DACs.
        samples: number of chip instances (seeds 0..samples-1).
        noise_scale: override the profile's noise scale.
        t_inference_s: time since programming (default: the profile's).
        test_set: a label for the test data, stored beside each number.
        only_layer: put noise in this layer only (per-layer sensitivity).
        device: torch device to run on.
        recalibrate_bn: re-estimate batch-norm statistics on each chip instance from the
            first :data:`BN_RECALIBRATION_BATCHES` training batches.
    """
    train_loader, test_loader = loaders
    return prepare(
        trained.model,
        test_loader,
        profile,
        samples=samples,
        calibration=islice(train_loader, CALIBRATION_BATCHES),
        noise_scale=noise_scale,
        t_inference_s=t_inference_s,
        only_layer=only_layer,
        labels=trained.store_labels(test_set),
        model_hash=trained.digest,
        device=device,
        bn_recalibration=islice(train_loader, BN_RECALIBRATION_BATCHES) if recalibrate_bn else None,
    )


def evaluate_checkpoint(
    trained: Trained,
    profile: Profile | str,
    loaders: tuple[Any, Any],
    *,
    store: ResultsStore | None = None,
    on_sample: Callable[[], None] | None = None,
    **settings: Unpack[CheckpointSettings],
) -> EvaluationResult:
    """:func:`evaluate` for a trained model: calibrated on the first training batches.

    Args:
        trained: from :func:`load_trained`.
        profile: the evaluation profile (name, path or object).
        loaders: (train loader, test loader); the first training batches calibrate the DACs.
        store: results database; instances already there are not measured again.
        on_sample: called after each chip instance (progress bars).
        settings: samples, noise_scale, t_inference_s, test_set, only_layer and device,
            as :func:`checkpoint_request` takes them.
    """
    return run_request(checkpoint_request(trained, profile, loaders, **settings), store=store, on_sample=on_sample)


@dataclass
class EvalReport:
    """What :func:`evaluate_models` measured: one row per model and profile, failed ones left out."""

    rows: list[tuple[Trained, str, EvaluationResult]]

    def to_json(self) -> str:
        """Every row with where its model came from, its label and profile, and its numbers."""
        rows = [
            {"checkpoint": str(trained.path), "trained": trained.label, "eval_profile": name, **result.as_dict()}
            for trained, name, result in self.rows
        ]
        return json.dumps(rows, indent=2)

    def write_json(self, path: str | Path) -> Path:
        """:meth:`to_json`, written (atomically) to ``path``."""
        from hwprofiles.io import write_text

        return write_text(path, self.to_json())


def evaluate_models(
    models: Sequence[Trained],
    profiles: Sequence[str],
    loaders: tuple[Any, Any],
    settings: CheckpointSettings | None = None,
    **options: Unpack[GridOptions],
) -> EvalReport:
    """Every model under every profile, as one grid sent to the executor at once.

    An evaluation that fails is left out of the report and named in ``stats.failures``;
    the others go on (a grid of one evaluation raises its error).

    Args:
        models: from :func:`load_trained` or :func:`load_weights`.
        profiles: the evaluation profiles.
        loaders: (train loader, test loader); the first training batches calibrate the DACs.
        settings: how each model is evaluated (samples, noise scale, time, test set label,
            device), as :func:`checkpoint_request` takes them.
        options: store, executor, on_sample, on_progress and stats, as
            :func:`hwprofiles.eval.grid.run_requests` takes them.

    >>> evaluate_models(models, ["ideal", "pcm-joshi2020"], loaders, CheckpointSettings(samples=3))  # doctest: +SKIP
    """
    cells = [(trained, name) for trained in models for name in profiles]
    requests = [checkpoint_request(trained, name, loaders, **(settings or {})) for trained, name in cells]
    results = run_requests(requests, **options)
    return EvalReport([(trained, name, r) for (trained, name), r in zip(cells, results) if r is not None])
