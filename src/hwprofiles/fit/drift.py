"""Drift: each device's exponent nu from its readings over time, and their spread across devices."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwprofiles.fit.measurements import Measurements
from hwprofiles.fit.statistics import Estimate


@dataclass
class DeviceDrift:
    """Per device (in the order of ``ids``): nu, its standard error, whether it could be fitted;
    and per device's first reading (``first_rows``): its device, its conductance corrected back
    to t = 0 (``programmed``) and its target."""

    ids: np.ndarray
    nu: np.ndarray
    se: np.ndarray
    fit_ok: np.ndarray
    first_rows: np.ndarray
    first_device: np.ndarray
    programmed: np.ndarray
    target: np.ndarray


@dataclass
class DriftFit:
    """The mean and spread of nu across healthy devices, with 95% intervals."""

    nu_mean: Estimate
    nu_std: Estimate
    n_devices: int


def fit_device_drift(m: Measurements, t0_s: float) -> DeviceDrift:
    """Per-device nu by least squares of ln g on ln((t + t0)/t0); first readings corrected to t = 0.

    ``m`` must have times and devices.
    """
    assert m.time_s is not None and m.device is not None
    ids, inverse = np.unique(m.device, return_inverse=True)
    d = len(ids)
    u = np.log((m.time_s + t0_s) / t0_s)
    positive = m.measured_us > 0
    y = np.log(np.where(positive, m.measured_us, 1.0))
    w = positive.astype(float)  # a reading at 0 uS has no logarithm: leave it out of its device's fit

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, weights=v * w, minlength=d)

    n, su, sy, suu, suy, syy = total(np.ones_like(u)), total(u), total(y), total(u * u), total(u * y), total(y * y)
    suu_c = suu - su * su / np.maximum(n, 1)
    fit_ok = (n >= 2) & (suu_c > 1e-12)
    slope = np.where(fit_ok, (suy - su * sy / np.maximum(n, 1)) / np.where(fit_ok, suu_c, 1), np.nan)
    syy_c = syy - sy * sy / np.maximum(n, 1)
    sse = np.maximum(syy_c - slope * slope * suu_c, 0)
    se = np.where(fit_ok & (n >= 3), np.sqrt(sse / np.maximum(n - 2, 1) / np.where(fit_ok, suu_c, 1)), np.nan)
    nu = -slope

    # Each device's first reading, brought back to t = 0 with its own nu (where fitted).
    order = np.lexsort((m.time_s, inverse))
    first = order[np.r_[True, inverse[order][1:] != inverse[order][:-1]]]
    dev_first = inverse[first]
    correction = np.where(np.isfinite(nu[dev_first]), np.exp(nu[dev_first] * u[first]), 1.0)
    return DeviceDrift(
        ids=ids,
        nu=nu,
        se=se,
        fit_ok=fit_ok,
        first_rows=first,
        first_device=dev_first,
        programmed=m.measured_us[first] * correction,
        target=m.target_us[first],
    )


def drift_statistics(drift: DeviceDrift, healthy_first: np.ndarray, notes: list[str]) -> DriftFit | None:
    """The spread of nu across the devices whose first reading is healthy, with the per-device
    estimation variance taken out; ``None`` (and a note) with fewer than 3 such devices."""
    from scipy import stats

    healthy = np.zeros(len(drift.ids), dtype=bool)
    healthy[drift.first_device[healthy_first]] = True
    ok = drift.fit_ok & healthy & np.isfinite(drift.nu)
    nu, se = drift.nu[ok], drift.se[ok]
    d = len(nu)
    if d < 3:
        notes.append(
            f"time_s is given, but only {d} healthy device(s) were read at two or more times: drift not fitted (needs 3)."
        )
        return None
    mean = float(nu.mean())
    sd2 = float(nu.var(ddof=1))
    noise2 = float(np.nanmean(se * se)) if np.isfinite(se).any() else 0.0
    half = stats.t.ppf(0.975, d - 1) * math.sqrt(sd2 / d)
    var_lo = (d - 1) * sd2 / stats.chi2.ppf(0.975, d - 1) - noise2
    var_hi = (d - 1) * sd2 / stats.chi2.ppf(0.025, d - 1) - noise2
    if mean < 0:
        notes.append("The fitted mean drift exponent is negative (conductances grew); the profile takes 0.")
    return DriftFit(
        nu_mean=Estimate(mean, mean - half, mean + half),
        nu_std=Estimate(math.sqrt(max(sd2 - noise2, 0.0)), math.sqrt(max(var_lo, 0.0)), math.sqrt(max(var_hi, 0.0))),
        n_devices=d,
    )
