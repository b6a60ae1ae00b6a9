"""What an evaluation over chip instances measured: the mean accuracy, its spread and
a confidence interval, and (for one evaluation) every chip's accuracy and key.

    >>> s = summarize([0.8, 0.9, 1.0])
    >>> round(s.mean, 3), round(s.std, 3), s.n
    (0.9, 0.1, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


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
        """The five numbers by name (the form written to JSON reports)."""
        return {"mean": self.mean, "std": self.std, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.ci_low:.4f}, {self.ci_high:.4f}]"


def summarize(
    accuracies: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = (0.0, 1.0)
) -> Summary:
    """Mean, sample std and a Student-t confidence interval of the mean, clipped to
    ``bounds`` ([0, 1], an accuracy's range; None for figures without one, such as a
    log-ratio or an error reduction)."""
    from scipy import stats

    values = [float(a) for a in accuracies]
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Summary(mean, 0.0, mean, mean, n)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    if std == 0:
        return Summary(mean, 0.0, mean, mean, n)
    low, high = (float(v) for v in stats.t.interval(confidence, n - 1, loc=mean, scale=std / math.sqrt(n)))
    if bounds is not None:
        low, high = max(bounds[0], low), min(bounds[1], high)
    return Summary(mean, std, low, high, n)


@dataclass(frozen=True)
class EvaluationResult(Summary):
    """What :func:`hwprofiles.evaluate` measured: the summary over chips and every chip's accuracy.

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
        """The mean, std and interval alone."""
        return Summary(self.mean, self.std, self.ci_low, self.ci_high, self.n)

    def as_dict(self) -> dict[str, Any]:
        """The summary, every chip's accuracy and seed, the profile setting and the hashes."""
        return {
            **super().as_dict(),
            "accuracies": list(self.accuracies),
            "seeds": list(self.seeds),
            "profile": self.profile,
            "noise_scale": self.noise_scale,
            "t_inference_s": self.t_inference_s,
            "hashes": dict(self.hashes),
        }

    @classmethod
    def failed(cls, profile: str) -> EvaluationResult:
        """The cell of an evaluation that failed (named elsewhere): every number NaN, no chips."""
        nan = float("nan")
        return cls(nan, nan, nan, nan, 0, profile=profile)
