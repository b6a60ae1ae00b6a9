"""What a fit found (:class:`FitResult`), as prose and as a profile."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwprofiles.entries.pcm import DRIFT_T0_S
from hwprofiles.fit.distributions import DistributionFit
from hwprofiles.fit.statistics import Estimate, quadratic
from hwprofiles.profiles import Profile, parse_profile


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
    t0_s: float = DRIFT_T0_S
    notes: list[str] = field(default_factory=list)

    def sigma_us(self, x: np.ndarray | float) -> np.ndarray:
        """The fitted programming-noise std s(x) in uS (floored at 0, as the profile does)."""
        c0, c1, c2 = (c.value for c in self.coefficients)
        return np.maximum(quadratic(np.asarray(x, dtype=float), c0, c1, c2), 0.0)

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
