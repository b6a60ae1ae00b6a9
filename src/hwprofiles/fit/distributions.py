"""The candidate distributions of the standardised residuals, and their fits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

# Each candidate's name and the scipy.stats distribution it is fitted as.
_SCIPY_NAMES = {"normal": "norm", "laplace": "laplace", "student-t": "t"}
DISTRIBUTIONS: tuple[str, ...] = tuple(_SCIPY_NAMES)


@dataclass
class DistributionFit:
    """One candidate distribution of the standardised residuals."""

    name: str
    params: tuple[float, ...]
    log_likelihood: float
    bic: float
    ks_pvalue: float


def scipy_distribution(name: str) -> Any:
    """The ``scipy.stats`` distribution of one of :data:`DISTRIBUTIONS` (scipy is imported here)."""
    from scipy import stats

    return getattr(stats, _SCIPY_NAMES[name])


def fit_distributions(z: np.ndarray) -> list[DistributionFit]:
    """Each of :data:`DISTRIBUTIONS` fitted to ``z`` by maximum likelihood, with its BIC and KS p-value."""
    from scipy import stats

    fits = []
    for name in DISTRIBUTIONS:
        dist = scipy_distribution(name)
        params = tuple(float(p) for p in dist.fit(z))
        ll = float(np.sum(dist.logpdf(z, *params)))
        bic = len(params) * math.log(len(z)) - 2 * ll
        ks = float(stats.kstest(z, dist.cdf, args=params).pvalue)
        fits.append(DistributionFit(name, params, ll, bic, ks))
    return fits
