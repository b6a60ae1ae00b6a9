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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from hwprofiles.eval.keys import model_digest
from hwprofiles.profiles import Profile
from hwprofiles.results import ResultsStore
from hwprofiles.train.checkpoint import load_checkpoint
from hwprofiles.train.config import TrainConfig
from hwprofiles.train.loop import build_base_model
from hwprofiles.train.methods import model_for_evaluation

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.eval.grid import EvalRequest

CALIBRATION_BATCHES = 4


@dataclass(frozen=True)
class Summary:
    """Mean accuracy over chip instances, its std, and a 95% interval of the mean.

    The interval is Student's t over the chip instances (scipy.stats), clipped to
    [0, 1] since an accuracy cannot leave it; with one instance, or identical ones,
    it collapses to the mean.
    """

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}]"


def summarize(accuracies: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, sample std and a Student-t confidence interval of the mean, clipped to [0, 1]."""
    from scipy import stats

    values = [float(a) for a in accuracies]
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Summary(mean, 0.0, mean, mean, n)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    if std == 0:
        return Summary(mean, 0.0, mean, mean, n)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=std / math.sqrt(n))
    return Summary(mean, std, max(0.0, float(low)), min(1.0, float(high)), n)


@dataclass(frozen=True)
class EvaluationResult(Summary):
    """What :func:`evaluate` measured: the summary over chips and every chip's accuracy.

    Attributes:
        accuracies: accuracy of each chip instance, in seed order.
        seeds: the chip seeds.
        keys: the content key (:attr:`EvalKey.id`) of each chip instance.
        profile: name of the evaluation profile.
        noise_scale, t_inference_s: the profile's noise scale and time since programming.
        hashes: content hashes of the model, profile, test data and calibration data.
        cached: how many chip instances came from the results store.
    """

    accuracies: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()
    keys: tuple[str, ...] = ()
    profile: str = ""
    noise_scale: float = 1.0
    t_inference_s: float = 1.0
    hashes: dict[str, str] = field(default_factory=dict, compare=False)
    cached: int = field(default=0, compare=False)

    @property
    def summary(self) -> Summary:
        return Summary(self.mean, self.std, self.ci_low, self.ci_high, self.n)

    def as_dict(self) -> dict[str, Any]:
        return {
            **super().as_dict(),
            "accuracies": list(self.accuracies),
            "seeds": list(self.seeds),
            "profile": self.profile,
            "noise_scale": self.noise_scale,
            "t_inference_s": self.t_inference_s,
            "hashes": dict(self.hashes),
        }


def evaluate(
    model: nn.Module,
    data: Iterable[Any],
    profile: Profile | str,
    *,
    samples: int = 5,
    calibration: Iterable[Any] | None = None,
    noise_scale: float | None = None,
    t_inference_s: float | None = None,
    only_layer: str | None = None,
    store: ResultsStore | None = None,
    labels: dict[str, Any] | None = None,
    description: dict[str, Any] | None = None,
    model_hash: str | None = None,
    device: str | torch.device = "cpu",
    on_sample: Callable[[], None] | None = None,
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
        samples: number of chip instances.
        calibration: a few training batches (inputs, or ``(inputs, labels)``); needed
            when the profile's DAC bound is calibrated. Never the test data.
        noise_scale: override the profile's noise scale.
        t_inference_s: time since programming (default: the profile's).
        only_layer: put noise in this layer only (per-layer sensitivity).
        store: a results store: chip instances already there are read, new ones written.
        labels: label columns stored beside each number (checkpoint, model, method,
            train_profile, test_set); ``eval_profile`` defaults to the profile's name.
        description: how the model was built, hashed with its weights.
        model_hash: the model's content hash, if already computed.
        device: torch device to run on.
        on_sample: called after each chip instance (progress bars).

    Returns:
        An :class:`EvaluationResult`: mean, std, 95% interval, per-chip accuracies, keys.

    Raises:
        HwProfilesError: calibration data missing, or ``only_layer`` unknown.
        ValueError: ``samples`` < 1, or a non-finite or negative time.
    """
    from hwprofiles.eval.grid import prepare, run_requests

    request = prepare(
        model,
        data,
        profile,
        samples=samples,
        calibration=calibration,
        noise_scale=noise_scale,
        t_inference_s=t_inference_s,
        only_layer=only_layer,
        labels=labels,
        description=description,
        model_hash=model_hash,
        device=device,
    )
    result = run_requests([request], store=store, on_sample=on_sample)[0]
    assert result is not None  # a single request's failure is raised
    return result


@dataclass
class Trained:
    """A model made ready for evaluation: from a checkpoint, or weights trained elsewhere.

    Attributes:
        path: the checkpoint or weights file (a label: results are keyed by content).
        config: the training configuration (for weights from elsewhere, what is known).
        model: float-structured, weights loaded.
        meta: the checkpoint's metadata.
        label: the name shown in tables (unique within one report, see
            :func:`hwprofiles.eval.labels.unique_labels`).
    """

    path: Path
    config: TrainConfig
    model: nn.Module
    meta: dict[str, Any]
    label: str = ""
    _digest: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.label = self.label or self.config.label

    @property
    def description(self) -> dict[str, Any]:
        c = self.config
        return {"model": c.model, "width": c.width, "method": c.method, "bits": c.bits, "act_scale": c.act_scale}

    @property
    def digest(self) -> str:
        """The content hash of the model (weights, structure, how it was built)."""
        if self._digest is None:
            self._digest = model_digest(self.model, self.description)
        return self._digest

    def store_labels(self, test_set: str) -> dict[str, Any]:
        method = "external" if "weights" in self.meta else self.config.method  # trained elsewhere
        return {
            "checkpoint": str(self.path),
            "model": self.config.model,
            "method": method,
            "train_profile": self.config.profile,
            "test_set": test_set,
        }


def load_trained(path: str | Path, splits: Any = None) -> Trained:
    """Rebuild the model of a checkpoint (float layers, QAT weights quantized once).

    ``splits`` gives the input channels and classes; without it, the checkpoint's own.
    """
    from hwprofiles.errors import CheckpointError

    state = load_checkpoint(path)
    meta = state["meta"]
    try:
        config = TrainConfig.from_dict(meta["config"])
        in_channels = splits.in_channels if splits is not None else meta["in_channels"]
        num_classes = splits.num_classes if splits is not None else meta["num_classes"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: its metadata lacks {exc}; it was not written by hwprofiles train. "
            "Retrain, or evaluate its weights with --model NAME --weights FILE."
        ) from None
    base = build_base_model(config, in_channels, num_classes)
    try:
        model = model_for_evaluation(base, state["state_dict"], config)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: its weights do not fit the model its metadata describes ({config.model}, width "
            f"{config.width:g}, {in_channels} input channels, {num_classes} classes): {_first_lines(exc)}"
        ) from None
    model.eval()
    return Trained(Path(path), config, model, state["meta"])


def _first_lines(exc: BaseException) -> str:
    """torch's load_state_dict message without its long tail: what is missing or mismatched."""
    return " ".join(line.strip() for line in str(exc).splitlines()[:4] if line.strip())[:400]


def load_weights(path: str | Path, model: str, splits: Any, *, width: float = 1.0) -> Trained:
    """A model trained elsewhere, ready for evaluation: ``model`` (a zoo name,
    ``torchvision:NAME`` or ``module:factory``) built for ``splits`` and given the state
    dict in ``path`` (read with ``weights_only=True``).

    Raises:
        CheckpointError: the file holds no state dict, or its weights do not fit the model.
    """
    from hwprofiles.errors import CheckpointError
    from hwprofiles.models import get_model
    from hwprofiles.train.checkpoint import load_state_dict_file

    state = load_state_dict_file(path)
    net = get_model(model, in_channels=splits.in_channels, num_classes=splits.num_classes, width=width)
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: its weights do not fit model '{model}' built for {splits.name} "
            f"({splits.in_channels} input channels, {splits.num_classes} classes, width {width:g}): {_first_lines(exc)} "
            "Check --model, --width and --dataset."
        ) from None
    config = TrainConfig(model=model, dataset=splits.name, width=width)
    return Trained(
        Path(path),
        config,
        net.eval(),
        {"config": config.to_dict(), "weights": str(path)},
        label=f"weights:{Path(path).name}",
    )


def test_set_id(splits: Any, test_subset: int | None) -> str:
    """A label for the test data (the key holds a hash of its content)."""
    return f"{splits.name}/test/{test_subset or 'all'}"


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
) -> EvalRequest:
    """The evaluation of a trained model as a request for :func:`hwprofiles.eval.grid.run_requests`:
    calibrated on the first training batches, labelled with where the model came from."""
    from hwprofiles.eval.grid import prepare

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
    )


def evaluate_checkpoint(
    trained: Trained,
    profile: Profile | str,
    loaders: tuple[Any, Any],
    *,
    samples: int = 5,
    noise_scale: float | None = None,
    t_inference_s: float | None = None,
    store: ResultsStore | None = None,
    test_set: str = "test",
    only_layer: str | None = None,
    on_sample: Callable[[], None] | None = None,
    device: str = "cpu",
) -> EvaluationResult:
    """:func:`evaluate` for a trained model: calibrated on the first training batches.

    Args:
        trained: from :func:`load_trained`.
        profile: the evaluation profile (name, path or object).
        loaders: (train loader, test loader); the first training batches calibrate the DACs.
        samples: number of chip instances (seeds 0..samples-1).
        noise_scale: override the profile's noise scale.
        t_inference_s: time since programming (default: the profile's).
        store: results database; instances already there are not measured again.
        test_set: a label for the test data, stored beside each number.
        only_layer: put noise in this layer only (per-layer sensitivity).
    """
    from hwprofiles.eval.grid import run_requests

    request = checkpoint_request(
        trained,
        profile,
        loaders,
        samples=samples,
        noise_scale=noise_scale,
        t_inference_s=t_inference_s,
        test_set=test_set,
        only_layer=only_layer,
        device=device,
    )
    result = run_requests([request], store=store, on_sample=on_sample)[0]
    assert result is not None  # a single request's failure is raised
    return result
