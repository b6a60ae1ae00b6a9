"""Fitting programming noise, stuck cells, drift and the residual distribution (:func:`fit_measurements`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwprofiles.entries.pcm import DRIFT_T0_S
from hwprofiles.errors import MeasurementError
from hwprofiles.fit.distributions import fit_distributions
from hwprofiles.fit.drift import DeviceDrift, DriftFit, drift_statistics, fit_device_drift
from hwprofiles.fit.measurements import Measurements, read_measurements
from hwprofiles.fit.result import FitResult
from hwprofiles.fit.statistics import Estimate, bin_index, binned, mad_sigma, proportion, quadratic, std_and_se
from hwprofiles.profiles import Profile

STUCK_Z = 6.0  # standard deviations between a rail and a target for a stuck cell to be told apart
OUTLIER_Z = 4.0  # cells at a rail this many standard deviations from their target are left out of the fit
CLAMP_Z = 3.0  # bins whose mean target is nearer 0 than this many sigma are left out of the fit
MAX_RESIDUALS = 20_000  # residuals used to choose the distribution (a seeded subsample beyond)


@dataclass
class StuckCells:
    """Cells read at a rail (SA0 at 0 uS, SA1 at g_max), and the cells far enough from each rail to be counted."""

    sa0: np.ndarray
    sa1: np.ndarray
    eligible0: np.ndarray
    eligible1: np.ndarray
    implausible: np.ndarray  # at a rail far from their target, but too near the rail to be counted
    floor: float  # the smallest programming-noise std, in uS, any cell is given

    @property
    def keep(self) -> np.ndarray:
        """The cells the noise is fitted on: neither stuck nor implausible."""
        return ~(self.sa0 | self.sa1 | self.implausible)


@dataclass
class NoiseFit:
    """The programming-noise polynomial fitted to the std of bins of x."""

    index: np.ndarray  # the bin of each cell
    bin_x: np.ndarray
    bin_sigma: np.ndarray
    bin_se: np.ndarray
    bin_n: np.ndarray
    bin_used: np.ndarray
    coefficients: list[Estimate]
    reduced_chi2: float


def fit_measurements(
    m: Measurements,
    *,
    g_max_us: float | None = None,
    bins: int = 20,
    min_per_bin: int = 30,
    t0_s: float = DRIFT_T0_S,
    stuck_tolerance: float = 0.02,
) -> FitResult:
    """Fit programming noise, drift, stuck cells and the residual distribution.

    Args:
        m: the measurements (see :func:`~hwprofiles.fit.read_measurements`).
        g_max_us: the conductance of the largest weight; default the largest target.
        bins: bins of x for the noise-vs-x fit (one per target level when there are fewer levels).
        min_per_bin: fewest cells a bin may hold.
        t0_s: the drift model's reference time t0.
        stuck_tolerance: a stuck cell reads within this fraction of g_max of its rail.

    Returns:
        The fitted numbers with 95% intervals.

    Raises:
        MeasurementError: too few measurements, or numbers a fit cannot use.

    >>> result = fit_measurements(read_measurements("measurements.csv"))  # doctest: +SKIP
    """
    source = m.source
    notes: list[str] = []
    drift = _device_drift(m, t0_s, notes)
    target, measured = (m.target_us, m.measured_us) if drift is None else (drift.target, drift.programmed)
    g_max_us = _g_max(target, g_max_us, source)
    x, r = target / g_max_us, measured - target
    stuck = find_stuck_cells(target, measured, g_max_us, stuck_tolerance, bins, min_per_bin, source)
    if stuck.implausible.any():
        notes.append(
            f"{int(stuck.implausible.sum())} cells at a rail far from their target, where stuck cells cannot be "
            "counted, were left out of the noise fit."
        )
    keep = stuck.keep
    noise = fit_programming_noise(x[keep], r[keep], target[keep], bins, min_per_bin, source, notes)
    z = standardised_residuals(x[keep], r[keep], noise, stuck.floor)
    drift_fit = drift_statistics(drift, keep, notes) if drift is not None else None
    return _result(m, g_max_us, len(target), noise, stuck, z, drift_fit, t0_s, notes)


def _result(
    m: Measurements,
    g_max_us: float,
    n_cells: int,
    noise: NoiseFit,
    stuck: StuckCells,
    z: np.ndarray,
    drift: DriftFit | None,
    t0_s: float,
    notes: list[str],
) -> FitResult:
    """The fitted pieces as one :class:`FitResult`, with the distribution of lowest BIC chosen for ``z``."""
    distributions = fit_distributions(z)
    n_sa0, n_sa1 = int(stuck.sa0.sum()), int(stuck.sa1.sum())
    n_eligible_sa0, n_eligible_sa1 = int(stuck.eligible0.sum()), int(stuck.eligible1.sum())
    return FitResult(
        source=m.source,
        g_max_us=g_max_us,
        n_rows=len(m.target_us),
        n_cells=n_cells,
        coefficients=noise.coefficients,
        reduced_chi2=noise.reduced_chi2,
        bin_x=noise.bin_x,
        bin_sigma=noise.bin_sigma,
        bin_se=noise.bin_se,
        bin_n=noise.bin_n,
        bin_used=noise.bin_used,
        p_sa0=proportion(n_sa0, n_eligible_sa0),
        p_sa1=proportion(n_sa1, n_eligible_sa1),
        n_sa0=n_sa0,
        n_sa1=n_sa1,
        n_eligible_sa0=n_eligible_sa0,
        n_eligible_sa1=n_eligible_sa1,
        distributions=distributions,
        distribution=min(distributions, key=lambda d: d.bic).name,
        residuals=z,
        nu_mean=drift.nu_mean if drift else None,
        nu_std=drift.nu_std if drift else None,
        n_drift_devices=drift.n_devices if drift else 0,
        t0_s=t0_s,
        notes=notes,
    )


def _device_drift(m: Measurements, t0_s: float, notes: list[str]) -> DeviceDrift | None:
    """Each device's drift when there are times; checks that the rows can be followed per device."""
    if m.time_s is not None and m.device is None:
        raise MeasurementError(
            f"{m.source}: a time_s column needs a device column too, so that each device can be followed over time"
        )
    if m.time_s is not None:
        notes.append("Programmed conductances are each device's first reading, corrected back to t = 0 by its own nu.")
        return fit_device_drift(m, t0_s)
    if m.device is not None and len(np.unique(m.device)) != len(m.device):
        raise MeasurementError(
            f"{m.source}: some devices appear on several rows but there is no time_s column; give the time of each "
            "reading, or one row per device"
        )
    return None


def _g_max(target: np.ndarray, g_max_us: float | None, source: str) -> float:
    """The g_max asked for, else the largest target; every target must lie within it."""
    if g_max_us is None:
        g_max_us = float(target.max())
        if g_max_us <= 0:
            raise MeasurementError(f"{source}: every target is 0 uS; give g_max, or measurements at other targets")
    over = int(np.sum(target > g_max_us * (1 + 1e-9)))
    if over:
        raise MeasurementError(
            f"{source}: {over} target(s) exceed g_max = {g_max_us:g} uS (the largest is {target.max():g} uS); "
            "give a larger g_max or check the units"
        )
    return g_max_us


def find_stuck_cells(
    target: np.ndarray,
    measured: np.ndarray,
    g_max_us: float,
    tolerance: float,
    bins: int,
    min_per_bin: int,
    source: str,
) -> StuckCells:
    """Cells stuck at 0 uS or at g_max, counted only where they can be told apart from programming noise.

    Pass 1 estimates s(x) robustly (median absolute deviation per bin), blind to the few
    stuck cells; pass 2 takes the std per bin without the cells at a rail far from their
    target, and sets the thresholds from it.
    """
    x, r = target / g_max_us, measured - target
    index, labels = bin_index(x, bins, min_per_bin, source, f"{len(target)} cells")
    nb = len(labels)
    x1 = binned(x, index, nb, np.mean)
    s1 = binned(r, index, nb, mad_sigma)
    floor = max(0.1 * float(np.median(s1)), 1e-9 * g_max_us)
    s1_cell = np.maximum(np.polyval(np.polyfit(x1, s1, 2), x), floor)
    tol = tolerance * g_max_us
    at_rail = (measured <= tol) | (measured >= g_max_us - tol)
    rough = ~(at_rail & (np.abs(r) > STUCK_Z * s1_cell))
    s2 = binned(r[rough], index[rough], nb, lambda v: float(np.std(v, ddof=1)))
    x2 = binned(x[rough], index[rough], nb, np.mean)
    s2_cell = np.maximum(np.polyval(np.polyfit(x2, s2, 2), x), floor)

    eligible0 = target - tol > STUCK_Z * s2_cell
    eligible1 = g_max_us - tol - target > STUCK_Z * s2_cell
    sa0 = eligible0 & (measured <= tol)
    sa1 = eligible1 & (measured >= g_max_us - tol)
    # Cells at a rail yet far from their target are stuck even where they cannot be counted;
    # ordinary noise reaches OUTLIER_Z std rarely enough that leaving those out costs little.
    implausible = at_rail & (np.abs(r) > OUTLIER_Z * s2_cell) & ~(sa0 | sa1)
    return StuckCells(sa0, sa1, eligible0, eligible1, implausible, floor)


def fit_programming_noise(
    x: np.ndarray,
    r: np.ndarray,
    target: np.ndarray,
    bins: int,
    min_per_bin: int,
    source: str,
    notes: list[str],
) -> NoiseFit:
    """The std of each bin of x, fitted with c0 + c1 x + c2 x^2 by weighted least squares.

    Bins whose mean target is within CLAMP_Z std of 0 are left out: the floor at 0 uS cuts their noise off.
    """
    index, labels = bin_index(x, bins, min_per_bin, source, f"{len(x)} cells that are not stuck")
    nb = len(labels)
    bin_x = binned(x, index, nb, np.mean)
    bin_t = binned(target, index, nb, np.mean)
    std_se = [std_and_se(r[index == i]) for i in range(nb)]
    bin_sigma = np.array([s for s, _ in std_se])
    bin_se = np.array([se for _, se in std_se])
    bin_used = bin_t >= CLAMP_Z * bin_sigma
    if bin_used.sum() < 4:
        raise MeasurementError(
            f"{source}: only {int(bin_used.sum())} bins lie clear of 0 uS (mean target at least 3 std above 0); "
            "the quadratic fit needs 4. Add measurements at larger targets."
        )
    coefficients, reduced = _weighted_quadratic(bin_x[bin_used], bin_sigma[bin_used], bin_se[bin_used], notes)
    bin_n = np.bincount(index, minlength=nb)
    return NoiseFit(index, bin_x, bin_sigma, bin_se, bin_n, bin_used, coefficients, reduced)


def _weighted_quadratic(
    x: np.ndarray, sigma: np.ndarray, se: np.ndarray, notes: list[str]
) -> tuple[list[Estimate], float]:
    """Coefficients with Student-t intervals from the covariance (scaled by the residual variance),
    and the reduced chi^2."""
    from scipy import stats
    from scipy.optimize import curve_fit

    start = np.polyfit(x, sigma, 2)[::-1]
    popt, pcov = curve_fit(quadratic, x, sigma, p0=start, sigma=se, absolute_sigma=False)
    dof = len(x) - 3
    chi2 = float(np.sum(((sigma - quadratic(x, *popt)) / se) ** 2))
    reduced = chi2 / dof if dof > 0 else float("nan")
    if dof > 0:
        half = stats.t.ppf(0.975, dof) * np.sqrt(np.diag(pcov))
    else:
        half = np.full(3, np.inf)
        notes.append("Exactly 3 bins were usable: the coefficients have no interval.")
    return [Estimate(float(v), float(v - h), float(v + h)) for v, h in zip(popt, half)], reduced


def standardised_residuals(x: np.ndarray, r: np.ndarray, noise: NoiseFit, floor: float) -> np.ndarray:
    """Residuals over the fitted s(x) in the bins the fit used (a seeded subsample beyond MAX_RESIDUALS)."""
    in_used = noise.bin_used[noise.index]
    c0, c1, c2 = (c.value for c in noise.coefficients)
    z = r[in_used] / np.maximum(quadratic(x[in_used], c0, c1, c2), floor)
    if len(z) > MAX_RESIDUALS:
        z = np.random.default_rng(0).choice(z, MAX_RESIDUALS, replace=False)
    return z


def fit_csv(
    path: str | Path,
    name: str,
    *,
    units: str | None = None,
    g_max_us: float | None = None,
    **options: Any,
) -> tuple[Profile, FitResult]:
    """Read a measurement CSV, fit it, and return the profile with the fit.

    >>> profile, result = fit_csv("measurements.csv", "lab-pcm", g_max_us=25)  # doctest: +SKIP
    """
    result = fit_measurements(read_measurements(path, units=units), g_max_us=g_max_us, **options)
    return result.to_profile(name), result
