"""Accuracy over K chip instances, with a confidence interval.

Each instance is one :func:`hwprofiles.program` with seed ``i``; every instance is
stored in the results database as soon as it is measured, so an interrupted
evaluation resumes where it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn

from hwprofiles.profiles import Profile, load_profile
from hwprofiles.results import EvalKey, ResultsStore
from hwprofiles.train.checkpoint import load_checkpoint
from hwprofiles.train.config import TrainConfig
from hwprofiles.train.loop import accuracy, build_base_model
from hwprofiles.train.methods import model_for_evaluation

CALIBRATION_BATCHES = 4


@dataclass(frozen=True)
class Summary:
    """Mean accuracy over chip instances, its std, and a 95% t-interval (scipy.stats)."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}]"


def summarize(accuracies: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, sample std and a Student-t confidence interval of the mean."""
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
    return Summary(mean, std, float(low), float(high), n)


@dataclass
class Trained:
    """A checkpoint made ready for evaluation."""

    path: Path
    config: TrainConfig
    model: nn.Module  # float-structured, weights loaded
    meta: dict[str, Any]

    @property
    def label(self) -> str:
        return self.config.label


def load_trained(path: str | Path, splits: Any) -> Trained:
    """Rebuild the model of a checkpoint (float layers, QAT weights quantized once)."""
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["meta"]["config"])
    base = build_base_model(config, splits.in_channels, splits.num_classes)
    model = model_for_evaluation(base, state["state_dict"], config)
    model.eval()
    return Trained(Path(path), config, model, state["meta"])


def test_set_id(splits: Any, test_subset: int | None) -> str:
    return f"{splits.name}/test/{test_subset or 'all'}"


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
) -> Summary:
    """Accuracy of a trained model under ``profile`` over ``samples`` chip instances.

    Args:
        trained: from :func:`load_trained`.
        profile: the evaluation profile (name, path or object).
        loaders: (train loader, test loader); a few training batches calibrate the DACs.
        samples: number of chip instances (seeds 0..samples-1).
        noise_scale: override the profile's noise scale.
        t_inference_s: time since programming (default: the profile's).
        store: results database; instances already there are not measured again.
        only_layer: put noise in this layer only (per-layer sensitivity).
    """
    from hwprofiles.nn.convert import calibrate, noisy_layer_names, program, to_noisy

    profile = load_profile(profile)
    if noise_scale is not None:
        profile = profile.with_noise_scale(noise_scale)
    t_s = profile.t_inference_s if t_inference_s is None else t_inference_s
    keys = [
        EvalKey(str(trained.path), profile.name, float(profile.noise_scale), float(t_s), test_set, seed, only_layer or "")
        for seed in range(samples)
    ]
    accuracies: dict[int, float] = {}
    if store is not None:
        for key in keys:
            value = store.get_eval(key)
            if value is not None:
                accuracies[key.seed] = value
    missing = [k for k in keys if k.seed not in accuracies]
    if missing:
        exclude: list[str] = []
        if only_layer is not None:
            exclude = [n for n in noisy_layer_names(trained.model, profile) if n != only_layer]
        noisy = to_noisy(trained.model, profile, exclude=exclude).to(device)
        train_loader, test_loader = loaders
        calibrate(noisy, [x.to(device) for x, _ in islice(train_loader, CALIBRATION_BATCHES)])
        for key in missing:
            program(noisy, seed=key.seed, t_inference_s=t_s)
            with torch.no_grad():
                accuracies[key.seed] = accuracy(noisy, test_loader, device)
            if store is not None:
                store.put_eval(key, accuracies[key.seed])
            if on_sample is not None:
                on_sample()
    for _ in range(samples - len(missing)):
        if on_sample is not None:
            on_sample()
    return summarize([accuracies[k.seed] for k in keys])
