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

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwprofiles.errors import MeasurementError
from hwprofiles.profiles import Profile, parse_profile

UNITS_TO_US = {"us": 1.0, "µs": 1.0, "μs": 1.0, "s": 1e6, "ms": 1e3, "ns": 1e-3}
REQUIRED_COLUMNS = ("target", "measured")
OPTIONAL_COLUMNS = ("time_s", "device")
STUCK_Z = 6.0  # standard deviations between a rail and a target for a stuck cell to be told apart
OUTLIER_Z = 4.0  # cells at a rail this many standard deviations from their target are left out of the fit
CLAMP_Z = 3.0  # bins whose mean target is nearer 0 than this many sigma are left out of the fit
MAX_RESIDUALS = 20_000  # residuals used to choose the distribution (a seeded subsample beyond)
DISTRIBUTIONS = ("normal", "laplace", "student-t")
_MAX_ERRORS = 10


@dataclass
class Measurements:
    """Conductance measurements, in uS.

    Attributes:
        source: the file they were read from (for messages).
        target_us: programmed target conductance of each row.
        measured_us: measured conductance of each row.
        time_s: time since programming of each row, or ``None``.
        device: device id of each row (strings), or ``None``.
    """

    source: str
    target_us: np.ndarray
    measured_us: np.ndarray
    time_s: np.ndarray | None = None
    device: np.ndarray | None = None


@dataclass(frozen=True)
class Estimate:
    """A fitted number with its 95% confidence interval."""

    value: float
    low: float
    high: float

    def text(self, fmt: str = ".4g", scale: float = 1.0, unit: str = "") -> str:
        v, lo, hi = (self.value * scale, self.low * scale, self.high * scale)
        return f"{v:{fmt}}{unit} [{lo:{fmt}}, {hi:{fmt}}]"


@dataclass
class DistributionFit:
    """One candidate distribution of the standardised residuals."""

    name: str
    params: tuple[float, ...]
    log_likelihood: float
    bic: float
    ks_pvalue: float


@dataclass
class FitResult:
    """Everything :func:`fit_measurements` found; :meth:`to_profile` writes it as a profile."""

    source: str
    g_max_us: float
    n_rows: int
    n_cells: int
    coefficients: list[Estimate]
    reduced_chi2: float
    bin_x: np.ndarray
    bin_sigma: np.ndarray
    bin_se: np.ndarray
    bin_n: np.ndarray
    bin_used: np.ndarray
    p_sa0: Estimate
    p_sa1: Estimate
    n_sa0: int
    n_sa1: int
    n_eligible_sa0: int
    n_eligible_sa1: int
    distributions: list[DistributionFit]
    distribution: str
    residuals: np.ndarray
    nu_mean: Estimate | None = None
    nu_std: Estimate | None = None
    n_drift_devices: int = 0
    t0_s: float = 20.0
    notes: list[str] = field(default_factory=list)

    def sigma_us(self, x: np.ndarray | float) -> np.ndarray:
        """The fitted programming-noise std s(x) in uS (floored at 0, as the profile does)."""
        c0, c1, c2 = (c.value for c in self.coefficients)
        x = np.asarray(x, dtype=float)
        return np.maximum(c0 + c1 * x + c2 * x * x, 0.0)

    def description(self) -> str:
        """The fitted numbers, their intervals and the goodness of fit, as prose."""
        c = self.coefficients
        used = int(self.bin_used.sum())
        parts = [
            f"Fitted by hwprofiles from {Path(self.source).name}: {self.n_rows} measurements of {self.n_cells} cells, "
            f"g_max = {self.g_max_us:.4g} uS. All intervals are 95%.",
            f"Programming noise s(x) = c0 + c1 x + c2 x^2 uS, x = target/g_max, by weighted least squares on the "
            f"std of {used} bins: c0 = {c[0].text()}, c1 = {c[1].text()}, c2 = {c[2].text()}; "
            f"reduced chi^2 {self.reduced_chi2:.2f}.",
        ]
        if used < len(self.bin_used):
            parts.append(
                f"{len(self.bin_used) - used} bin(s) near 0 uS left out (the 0 uS floor cuts the noise off there)."
            )
        chosen = next(d for d in self.distributions if d.name == self.distribution)
        others = ", ".join(f"{d.name} BIC {d.bic:.1f} KS p {d.ks_pvalue:.3g}" for d in self.distributions)
        parts.append(
            f"Residuals over s(x) are best described as {self.distribution} (lowest BIC; KS p {chosen.ks_pvalue:.3g}; "
            f"{others}); pcm_programming draws Gaussian noise of the same std."
        )
        if self.nu_mean is not None and self.nu_std is not None:
            parts.append(
                f"Drift from {self.n_drift_devices} devices (t0 = {self.t0_s:g} s): nu mean {self.nu_mean.text()}, "
                f"nu std {self.nu_std.text()} (per-device estimation noise removed)."
            )
        parts.append(
            f"Stuck cells (Clopper-Pearson): SA0 {self.p_sa0.text('.3g', 100, '%')} ({self.n_sa0} of "
            f"{self.n_eligible_sa0} cells whose target is clear of 0), SA1 {self.p_sa1.text('.3g', 100, '%')} "
            f"({self.n_sa1} of {self.n_eligible_sa1} clear of g_max)."
        )
        parts += self.notes
        parts.append("The periphery (DAC, ADC, tiles) is not measured here; add it to this file.")
        text = " ".join(parts)
        return text if len(text) <= 5000 else text[:4990] + " [...]"

    def to_profile(self, name: str) -> Profile:
        """The profile: pcm_programming, pcm_drift (with times) and stuck_at (when any cell is stuck)."""

        def r(v: float) -> float:
            return float(f"{v:.6g}")

        c = self.coefficients
        noise: list[dict[str, Any]] = [
            {
                "kind": "pcm_programming",
                "coefficients_us": [r(e.value) for e in c],
                "g_max_ref_us": r(self.g_max_us),
                "note": f"Fitted: c0 {c[0].text()}, c1 {c[1].text()}, c2 {c[2].text()} (95% CI).",
            }
        ]
        if self.nu_mean is not None and self.nu_std is not None:
            noise.append(
                {
                    "kind": "pcm_drift",
                    "t0_s": self.t0_s,
                    "nu_mean": r(min(max(self.nu_mean.value, 0.0), 1.0)),
                    "nu_std": r(min(max(self.nu_std.value, 0.0), 1.0)),
                    "note": f"Fitted over {self.n_drift_devices} devices: nu mean {self.nu_mean.text()}, std {self.nu_std.text()}.",
                }
            )
        if self.n_sa0 or self.n_sa1:
            noise.append(
                {
                    "kind": "stuck_at",
                    "p_sa0": r(self.p_sa0.value),
                    "p_sa1": r(self.p_sa1.value),
                    "note": f"Fitted: SA0 {self.p_sa0.text('.3g')}, SA1 {self.p_sa1.text('.3g')} (Clopper-Pearson 95%).",
                }
            )
        data = {
            "name": name,
            "technology": "pcm",
            "description": self.description(),
            "references": [
                {
                    "citation": f"Measurements in {Path(self.source).name}, fitted with hwprofiles profiles fit.",
                    "supports": "Every noise number of this profile.",
                }
            ],
            "mapping": {"g_max_us": r(self.g_max_us)},
            "noise": noise,
        }
        return parse_profile(data, source=f"profile fitted from {self.source}")


# --------------------------------------------------------------------------- reading


def _units_factor(units: str, where: str) -> float:
    factor = UNITS_TO_US.get(units.strip().lower().replace("siemens", "s"))
    if factor is None:
        raise MeasurementError(f"{where}: unknown units '{units}'; use uS, nS or S")
    return factor


def read_measurements(path: str | Path, units: str | None = None) -> Measurements:
    """Read a measurement CSV (see the module docstring), converting to uS.

    Args:
        path: the CSV file.
        units: uS, nS or S; default the file's ``# units:`` line, else uS.

    Raises:
        MeasurementError: the file is missing, empty or malformed; the message names the
            file, the line and column, and how to fix it.

    >>> m = read_measurements("measurements.csv", units="nS")  # doctest: +SKIP
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MeasurementError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MeasurementError(f"{path}: cannot be read: {exc}") from None
    file_units: str | None = None
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            match = re.match(r"#\s*units?\s*[:=]\s*(\S+)", stripped, re.IGNORECASE)
            if match:
                file_units = match.group(1)
            continue
        lines.append((number, line))
    how = "Expected a header line 'target,measured' (optionally also time_s and device), then one row per measurement."
    if not lines:
        raise MeasurementError(f"{path}: the file is empty (no header, no measurements). {how}")
    if units and file_units and _units_factor(units, str(path)) != _units_factor(file_units, str(path)):
        raise MeasurementError(
            f"{path}: the file says '# units: {file_units}' but units {units} were asked for; drop one of them"
        )
    factor = _units_factor(units or file_units or "uS", f"{path}" if units else f"{path}: '# units:' line")

    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines))))
    header = [h.strip().lower() for h in rows[0]]
    header_line = lines[0][0]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise MeasurementError(
            f"{path}: line {header_line}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"found {', '.join(repr(h) for h in header) or 'none'}. {how}"
        )
    duplicated = sorted({h for h in header if header.count(h) > 1 and h in REQUIRED_COLUMNS + OPTIONAL_COLUMNS})
    if duplicated:
        raise MeasurementError(f"{path}: line {header_line}: column(s) {', '.join(duplicated)} appear twice")
    data = rows[1:]
    if not data:
        raise MeasurementError(f"{path}: no measurements: the header (line {header_line}) is followed by no rows")

    index = {name: header.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in header}
    numeric = [c for c in ("target", "measured", "time_s") if c in index]
    values = {c: np.empty(len(data)) for c in numeric}
    devices: list[str] = []
    errors: list[str] = []
    for i, (row, (line_number, _)) in enumerate(zip(data, lines[1:])):
        if len(row) != len(header):
            errors.append(f"line {line_number}: {len(row)} values, but the header has {len(header)} columns")
            continue
        for column in numeric:
            cell = row[index[column]].strip()
            try:
                value = float(cell)
            except ValueError:
                errors.append(f"line {line_number}, column '{column}': {cell!r} is not a number")
                continue
            if not math.isfinite(value):
                errors.append(f"line {line_number}, column '{column}': {cell!r} is not a finite number")
            elif value < 0:
                what = "a time since programming" if column == "time_s" else "a conductance"
                errors.append(f"line {line_number}, column '{column}': {cell} is negative, but {what} cannot be")
            values[column][i] = value
        if "device" in index:
            device = row[index["device"]].strip()
            if not device:
                errors.append(f"line {line_number}, column 'device': empty; give every row its device id")
            devices.append(device)
    if errors:
        more = f"\n... and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
        raise MeasurementError(
            f"{path}: {len(errors)} bad value(s); conductances and times must be plain non-negative numbers "
            "(e.g. 12.5), in the file's units:\n" + "\n".join(f"{path}: {e}" for e in errors[:_MAX_ERRORS]) + more
        )
    return Measurements(
        source=str(path),
        target_us=values["target"] * factor,
        measured_us=values["measured"] * factor,
        time_s=values.get("time_s"),
        device=np.asarray(devices) if "device" in index else None,
    )


# --------------------------------------------------------------------------- fitting


def _bins(x: np.ndarray, n_bins: int, min_per_bin: int, source: str, what: str) -> tuple[np.ndarray, list[str]]:
    """Bin index of each value, and a label per bin: one bin per target level if few, else equal counts."""
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


def _binned(values: np.ndarray, index: np.ndarray, n: int, fn: Any) -> np.ndarray:
    return np.array([fn(values[index == i]) for i in range(n)])


def _mad_sigma(r: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def _std_and_se(r: np.ndarray) -> tuple[float, float]:
    """Sample std and its standard error, from the fourth moment (valid beyond the normal)."""
    n = len(r)
    s2 = float(np.var(r, ddof=1))
    m4 = float(np.mean((r - r.mean()) ** 4))
    var_s2 = max((m4 - s2 * s2 * (n - 3) / (n - 1)) / n, 1e-30)
    s = math.sqrt(s2)
    return s, math.sqrt(var_s2) / (2 * max(s, 1e-15))


def _quadratic(x: np.ndarray, c0: float, c1: float, c2: float) -> np.ndarray:
    return c0 + c1 * x + c2 * x * x


def _proportion(k: int, n: int) -> Estimate:
    from scipy import stats

    if n == 0:
        return Estimate(0.0, 0.0, 1.0)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high))


def _fit_drift(m: Measurements, t0_s: float) -> dict[str, Any]:
    """Per-device nu by least squares of ln g on ln((t + t0)/t0); first readings corrected to t = 0."""
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
    return {
        "ids": ids,
        "nu": nu,
        "se": se,
        "fit_ok": fit_ok,
        "first_rows": first,
        "first_device": dev_first,
        "programmed": m.measured_us[first] * correction,
        "target": m.target_us[first],
    }


def fit_measurements(
    m: Measurements,
    *,
    g_max_us: float | None = None,
    bins: int = 20,
    min_per_bin: int = 30,
    t0_s: float = 20.0,
    stuck_tolerance: float = 0.02,
) -> FitResult:
    """Fit programming noise, drift, stuck cells and the residual distribution.

    Args:
        m: the measurements (see :func:`read_measurements`).
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
    from scipy import stats
    from scipy.optimize import curve_fit

    source = m.source
    notes: list[str] = []
    if m.time_s is not None and m.device is None:
        raise MeasurementError(
            f"{source}: a time_s column needs a device column too, so that each device can be followed over time"
        )
    drift = None
    if m.time_s is not None:
        drift = _fit_drift(m, t0_s)
        target, measured = drift["target"], drift["programmed"]
        notes.append("Programmed conductances are each device's first reading, corrected back to t = 0 by its own nu.")
    elif m.device is not None and len(np.unique(m.device)) != len(m.device):
        raise MeasurementError(
            f"{source}: some devices appear on several rows but there is no time_s column; give the time of each "
            "reading, or one row per device"
        )
    else:
        target, measured = m.target_us, m.measured_us

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
    x = target / g_max_us
    r = measured - target
    cells = len(target)

    # Pass 1: a robust s(x) (median absolute deviation per bin), blind to the few stuck cells;
    # pass 2: the std per bin without the cells at a rail far from their target, for thresholds.
    index, labels = _bins(x, bins, min_per_bin, source, f"{cells} cells")
    nb = len(labels)
    x1 = _binned(x, index, nb, np.mean)
    s1 = _binned(r, index, nb, _mad_sigma)
    floor = max(0.1 * float(np.median(s1)), 1e-9 * g_max_us)
    s1_cell = np.maximum(np.polyval(np.polyfit(x1, s1, 2), x), floor)
    tol = stuck_tolerance * g_max_us
    at_rail = (measured <= tol) | (measured >= g_max_us - tol)
    rough = ~(at_rail & (np.abs(r) > STUCK_Z * s1_cell))
    s2 = _binned(r[rough], index[rough], nb, lambda v: float(np.std(v, ddof=1)))
    x2 = _binned(x[rough], index[rough], nb, np.mean)
    s2_cell = np.maximum(np.polyval(np.polyfit(x2, s2, 2), x), floor)

    eligible0 = target - tol > STUCK_Z * s2_cell
    eligible1 = g_max_us - tol - target > STUCK_Z * s2_cell
    sa0 = eligible0 & (measured <= tol)
    sa1 = eligible1 & (measured >= g_max_us - tol)
    # Cells at a rail yet far from their target are stuck even where they cannot be counted;
    # ordinary noise reaches OUTLIER_Z std rarely enough that leaving those out costs little.
    implausible = at_rail & (np.abs(r) > OUTLIER_Z * s2_cell) & ~(sa0 | sa1)
    keep = ~(sa0 | sa1 | implausible)
    if implausible.any():
        notes.append(
            f"{int(implausible.sum())} cells at a rail far from their target, where stuck cells cannot be "
            "counted, were left out of the noise fit."
        )

    # Pass 2: the std of each bin of the kept cells, fitted by weighted least squares.
    xk, rk, tk = x[keep], r[keep], target[keep]
    index, labels = _bins(xk, bins, min_per_bin, source, f"{len(xk)} cells that are not stuck")
    nb = len(labels)
    bin_x = _binned(xk, index, nb, np.mean)
    bin_t = _binned(tk, index, nb, np.mean)
    std_se = [_std_and_se(rk[index == i]) for i in range(nb)]
    bin_sigma = np.array([s for s, _ in std_se])
    bin_se = np.array([se for _, se in std_se])
    bin_n = np.bincount(index, minlength=nb)
    bin_used = bin_t >= CLAMP_Z * bin_sigma
    if bin_used.sum() < 4:
        raise MeasurementError(
            f"{source}: only {int(bin_used.sum())} bins lie clear of 0 uS (mean target at least 3 std above 0); "
            "the quadratic fit needs 4. Add measurements at larger targets."
        )
    xu, su, seu = bin_x[bin_used], bin_sigma[bin_used], bin_se[bin_used]
    start = np.polyfit(xu, su, 2)[::-1]
    popt, pcov = curve_fit(_quadratic, xu, su, p0=start, sigma=seu, absolute_sigma=False)
    dof = len(xu) - 3
    chi2 = float(np.sum(((su - _quadratic(xu, *popt)) / seu) ** 2))
    reduced = chi2 / dof if dof > 0 else float("nan")
    if dof > 0:
        half = stats.t.ppf(0.975, dof) * np.sqrt(np.diag(pcov))
    else:
        half = np.full(3, np.inf)
        notes.append("Exactly 3 bins were usable: the coefficients have no interval.")
    coefficients = [Estimate(float(v), float(v - h), float(v + h)) for v, h in zip(popt, half)]

    # The residual distribution, on residuals over the fitted s(x), in the bins used.
    in_used = bin_used[index]
    s_cell = np.maximum(_quadratic(xk[in_used], *popt), floor)
    z = rk[in_used] / s_cell
    if len(z) > MAX_RESIDUALS:
        z = np.random.default_rng(0).choice(z, MAX_RESIDUALS, replace=False)
    candidates = {"normal": stats.norm, "laplace": stats.laplace, "student-t": stats.t}
    distributions = []
    for name, dist in candidates.items():
        params = tuple(float(p) for p in dist.fit(z))
        ll = float(np.sum(dist.logpdf(z, *params)))
        bic = len(params) * math.log(len(z)) - 2 * ll
        ks = float(stats.kstest(z, dist.cdf, args=params).pvalue)
        distributions.append(DistributionFit(name, params, ll, bic, ks))
    chosen = min(distributions, key=lambda d: d.bic).name

    result = FitResult(
        source=source,
        g_max_us=g_max_us,
        n_rows=len(m.target_us),
        n_cells=cells,
        coefficients=coefficients,
        reduced_chi2=reduced,
        bin_x=bin_x,
        bin_sigma=bin_sigma,
        bin_se=bin_se,
        bin_n=bin_n,
        bin_used=bin_used,
        p_sa0=_proportion(int(sa0.sum()), int(eligible0.sum())),
        p_sa1=_proportion(int(sa1.sum()), int(eligible1.sum())),
        n_sa0=int(sa0.sum()),
        n_sa1=int(sa1.sum()),
        n_eligible_sa0=int(eligible0.sum()),
        n_eligible_sa1=int(eligible1.sum()),
        distributions=distributions,
        distribution=chosen,
        residuals=z,
        t0_s=t0_s,
        notes=notes,
    )
    if drift is not None:
        _drift_statistics(result, drift, ~(sa0 | sa1 | implausible), source)
    return result


def _drift_statistics(result: FitResult, drift: dict[str, Any], healthy_first: np.ndarray, source: str) -> None:
    from scipy import stats

    healthy = np.zeros(len(drift["ids"]), dtype=bool)
    healthy[drift["first_device"][healthy_first]] = True
    ok = drift["fit_ok"] & healthy & np.isfinite(drift["nu"])
    nu, se = drift["nu"][ok], drift["se"][ok]
    d = len(nu)
    if d < 3:
        result.notes.append(
            f"time_s is given, but only {d} healthy device(s) were read at two or more times: drift not fitted (needs 3)."
        )
        return
    mean = float(nu.mean())
    sd2 = float(nu.var(ddof=1))
    noise2 = float(np.nanmean(se * se)) if np.isfinite(se).any() else 0.0
    half = stats.t.ppf(0.975, d - 1) * math.sqrt(sd2 / d)
    var_lo = (d - 1) * sd2 / stats.chi2.ppf(0.975, d - 1) - noise2
    var_hi = (d - 1) * sd2 / stats.chi2.ppf(0.025, d - 1) - noise2
    result.nu_mean = Estimate(mean, mean - half, mean + half)
    result.nu_std = Estimate(
        math.sqrt(max(sd2 - noise2, 0.0)), math.sqrt(max(var_lo, 0.0)), math.sqrt(max(var_hi, 0.0))
    )
    result.n_drift_devices = d
    if mean < 0:
        result.notes.append("The fitted mean drift exponent is negative (conductances grew); the profile takes 0.")


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


# --------------------------------------------------------------------------- plotting


def plot_fit(result: FitResult, path: str | Path) -> Path:
    """A diagnostic PNG: binned std against x with the fitted curve; the residual histogram
    with the candidate distributions (the chosen one bold).

    matplotlib is imported here, with its Agg canvas, so nothing else needs a display.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from scipy import stats

    from hwprofiles.io import atomic_write

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    used = result.bin_used
    left.errorbar(
        result.bin_x[used],
        result.bin_sigma[used],
        yerr=1.96 * result.bin_se[used],
        fmt="o",
        ms=4,
        color="C0",
        label="binned std (95% error bars)",
    )
    if (~used).any():
        left.errorbar(
            result.bin_x[~used],
            result.bin_sigma[~used],
            yerr=1.96 * result.bin_se[~used],
            fmt="o",
            ms=4,
            mfc="none",
            color="C7",
            label="left out (near 0 uS)",
        )
    grid = np.linspace(0, 1, 201)
    c = result.coefficients
    left.plot(
        grid, result.sigma_us(grid), color="C3", label=f"fit {c[0].value:.3g} {c[1].value:+.3g} x {c[2].value:+.3g} x²"
    )
    left.set_xlabel("x = target / g_max")
    left.set_ylabel("std of measured - target (uS)")
    left.set_title("Programming noise")
    left.legend(fontsize=8)

    z = result.residuals
    lim = float(np.clip(np.quantile(np.abs(z), 0.999), 3, 12))
    right.hist(z, bins=80, range=(-lim, lim), density=True, color="C0", alpha=0.4, label="residuals / s(x)")
    zz = np.linspace(-lim, lim, 400)
    dists = {"normal": stats.norm, "laplace": stats.laplace, "student-t": stats.t}
    for i, d in enumerate(result.distributions):
        chosen = d.name == result.distribution
        right.plot(
            zz,
            dists[d.name].pdf(zz, *d.params),
            color=f"C{i + 1}",
            lw=2.2 if chosen else 1,
            ls="-" if chosen else "--",
            label=f"{d.name}{' (chosen)' if chosen else ''}, KS p {d.ks_pvalue:.2g}",
        )
    right.set_yscale("log")
    right.set_ylim(bottom=max(1e-4, 0.5 / len(z)))
    right.set_xlabel("standardised residual")
    right.set_title("Residual distribution (lowest BIC chosen)")
    right.legend(fontsize=8)
    fig.suptitle(f"{Path(result.source).name}: {result.n_cells} cells, g_max {result.g_max_us:.3g} uS", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    return path
