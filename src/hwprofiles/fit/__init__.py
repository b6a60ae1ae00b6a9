"""Fit a PCM-like profile to measured device conductances.

The input is a CSV file with one row per measurement::

    # units: uS
    target,measured,time_s,device
    12.5,12.31,1,a17
    12.5,11.02,86400,a17

``target`` is the conductance a device was programmed to, ``measured`` what was
read; ``time_s`` (time since programming) and ``device`` (an id) are optional, and
``time_s`` needs ``device`` so that each device can be followed over time. Units
are uS unless a ``# units:`` comment line or the ``units`` argument says S or nS.

What is fitted (x = target / g_max; every interval is a two-sided 95% one):

* **Programming noise**: the residuals ``measured - target`` of cells that are not
  stuck are grouped into bins of x (one bin per target level when there are few
  levels, else bins holding equal numbers of cells); each bin's standard deviation,
  with its standard error from the bin's fourth moment, is fitted by weighted least
  squares (``scipy.optimize.curve_fit``) with ``c0 + c1 x + c2 x^2``, the form of
  ``pcm_programming``. Coefficient intervals come from the covariance, scaled by
  the fit's residual variance, with Student-t quantiles. Bins whose mean target is
  within 3 standard deviations of 0 are left out: there the device's floor at
  0 uS cuts the noise off.
* **Drift** (with ``time_s``): per device, ``ln g(t)`` against ``ln((t + t0)/t0)``
  by least squares gives ``nu`` as minus the slope; the mean and spread of ``nu``
  across devices follow, the spread with the per-device estimation variance taken
  out (``var(nu) = var(nu_hat) - mean(se^2)``). Each device's first reading, corrected
  by its own drift back to t = 0, is its programmed conductance.
* **Stuck cells**: a cell reading within ``stuck_tolerance * g_max`` of 0 (SA0) or of
  g_max (SA1) while its target lies more than 6 standard deviations of programming
  noise away from that rail (the noise estimated first robustly, from the median
  absolute deviation, then from the std without the cells at a rail). Only such cells
  can be told apart from ordinary noise, so each fraction is the count over the cells
  whose target is that far from the rail, with a Clopper-Pearson interval
  (``scipy.stats.binomtest``). Cells at a rail more than 4 standard deviations from
  their target, but too near it to be counted, are left out of the noise fit.
* **Residual distribution**: residuals divided by the fitted s(x) are fitted by
  maximum likelihood as normal, Laplace and Student-t (``scipy.stats.<dist>.fit``);
  the one with the lowest Bayesian information criterion is chosen, and each
  one's Kolmogorov-Smirnov p-value is reported as its goodness of fit (optimistic,
  since the parameters were fitted to the same residuals).

    >>> from hwprofiles.fit import fit_csv
    >>> profile, result = fit_csv("measurements.csv", name="lab-pcm")  # doctest: +SKIP
    >>> result.coefficients[0]  # doctest: +SKIP
    Estimate(value=0.27, low=0.22, high=0.31)
"""

from __future__ import annotations

from hwprofiles.fit.distributions import DISTRIBUTIONS, DistributionFit
from hwprofiles.fit.fitting import CLAMP_Z, MAX_RESIDUALS, OUTLIER_Z, STUCK_Z, fit_csv, fit_measurements
from hwprofiles.fit.measurements import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    UNITS_TO_US,
    Measurements,
    read_measurements,
)
from hwprofiles.fit.plot import plot_fit
from hwprofiles.fit.result import FitResult
from hwprofiles.fit.statistics import Estimate

__all__ = [
    "CLAMP_Z",
    "DISTRIBUTIONS",
    "MAX_RESIDUALS",
    "OPTIONAL_COLUMNS",
    "OUTLIER_Z",
    "REQUIRED_COLUMNS",
    "STUCK_Z",
    "UNITS_TO_US",
    "DistributionFit",
    "Estimate",
    "FitResult",
    "Measurements",
    "fit_csv",
    "fit_measurements",
    "plot_fit",
    "read_measurements",
]
