"""Small statistics the fit is built from: estimates with intervals, bins, robust spreads."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hwprofiles.errors import MeasurementError


@dataclass(frozen=True)
class Estimate:
    """A fitted number with its 95% confidence interval."""

    value: float
    low: float
    high: float

    def text(self, fmt: str = ".4g", scale: float = 1.0, unit: str = "") -> str:
        """``value [low, high]`` with the numbers in ``fmt``, each times ``scale``, then ``unit``."""
        v, lo, hi = (self.value * scale, self.low * scale, self.high * scale)
        return f"{v:{fmt}}{unit} [{lo:{fmt}}, {hi:{fmt}}]"


def bin_index(x: np.ndarray, n_bins: int, min_per_bin: int, source: str, what: str) -> tuple[np.ndarray, list[str]]:
    """Bin index of each value, and a label per bin: one bin per target level if few, else equal counts.

    Raises:
        MeasurementError: fewer than 4 bins, or a bin holding fewer than ``min_per_bin`` values.
    """
    levels = np.unique(x)
    if len(levels) <= n_bins:
        index = np.searchsorted(levels, x)
        labels = [f"x = {v:.3g}" for v in levels]
    else:
        edges = np.quantile(x, np.linspace(0, 1, n_bins + 1))
        index = np.clip(np.searchsorted(edges[1:-1], x, side="right"), 0, n_bins - 1)
        labels = [f"x from {edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(n_bins)]
    counts = np.bincount(index, minlength=len(labels))
    if len(labels) < 4:
        raise MeasurementError(
            f"{source}: only {len(labels)} target level(s) among {what}; a quadratic fit of the noise needs at "
            "least 4 (better 10 or more) different targets"
        )
    short = [i for i in range(len(labels)) if counts[i] < min_per_bin]
    if short:
        worst = min(short, key=lambda i: counts[i])
        raise MeasurementError(
            f"{source}: too few measurements per bin: {len(short)} of {len(labels)} bins of {what} hold fewer than "
            f"{min_per_bin} (the fewest: {counts[worst]} at {labels[worst]}; {len(x)} measurements in all). "
            f"Add measurements (at least {min_per_bin} per target level), or use fewer bins or a lower minimum per bin."
        )
    return index, labels


def binned(values: np.ndarray, index: np.ndarray, n: int, fn: Callable[[np.ndarray], Any]) -> np.ndarray:
    """``fn`` of the values in each of ``n`` bins, in bin order."""
    return np.array([fn(values[index == i]) for i in range(n)])


def mad_sigma(r: np.ndarray) -> float:
    """The standard deviation estimated robustly, from the median absolute deviation."""
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def std_and_se(r: np.ndarray) -> tuple[float, float]:
    """Sample std and its standard error, from the fourth moment (valid beyond the normal)."""
    n = len(r)
    s2 = float(np.var(r, ddof=1))
    m4 = float(np.mean((r - r.mean()) ** 4))
    var_s2 = max((m4 - s2 * s2 * (n - 3) / (n - 1)) / n, 1e-30)
    s = math.sqrt(s2)
    return s, math.sqrt(var_s2) / (2 * max(s, 1e-15))


def quadratic(x: np.ndarray, c0: float, c1: float, c2: float) -> np.ndarray:
    """``c0 + c1 x + c2 x^2``, the form of pcm_programming's noise polynomial."""
    return c0 + c1 * x + c2 * x * x


def proportion(k: int, n: int) -> Estimate:
    """``k / n`` with its Clopper-Pearson 95% interval (0 in [0, 1] when ``n`` is 0)."""
    from scipy import stats

    if n == 0:
        return Estimate(0.0, 0.0, 1.0)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high))
