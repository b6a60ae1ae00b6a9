"""The diagnostic figure of a fit (matplotlib, imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hwprofiles.fit.distributions import scipy_distribution
from hwprofiles.fit.result import FitResult


def plot_fit(result: FitResult, path: str | Path) -> Path:
    """A diagnostic PNG: binned std against x with the fitted curve; the residual histogram
    with the candidate distributions (the chosen one bold).

    matplotlib is imported here, with its Agg canvas, so nothing else needs a display.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from hwprofiles.io import atomic_write

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    _plot_noise(left, result)
    _plot_residuals(right, result)
    fig.suptitle(f"{Path(result.source).name}: {result.n_cells} cells, g_max {result.g_max_us:.3g} uS", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    return path


def _plot_noise(ax: Any, result: FitResult) -> None:
    """The std of each bin against x, with 95% error bars, and the fitted polynomial."""
    used = result.bin_used
    for bins, style in (
        (used, {"color": "C0", "label": "binned std (95% error bars)"}),
        (~used, {"mfc": "none", "color": "C7", "label": "left out (near 0 uS)"}),
    ):
        if bins.any():
            ax.errorbar(
                result.bin_x[bins], result.bin_sigma[bins], yerr=1.96 * result.bin_se[bins], fmt="o", ms=4, **style
            )
    grid = np.linspace(0, 1, 201)
    c = result.coefficients
    ax.plot(
        grid, result.sigma_us(grid), color="C3", label=f"fit {c[0].value:.3g} {c[1].value:+.3g} x {c[2].value:+.3g} x²"
    )
    ax.set_xlabel("x = target / g_max")
    ax.set_ylabel("std of measured - target (uS)")
    ax.set_title("Programming noise")
    ax.legend(fontsize=8)


def _plot_residuals(ax: Any, result: FitResult) -> None:
    """The histogram of the standardised residuals with each candidate's density (the chosen one bold)."""
    z = result.residuals
    lim = float(np.clip(np.quantile(np.abs(z), 0.999), 3, 12))
    ax.hist(z, bins=80, range=(-lim, lim), density=True, color="C0", alpha=0.4, label="residuals / s(x)")
    zz = np.linspace(-lim, lim, 400)
    for i, d in enumerate(result.distributions):
        chosen = d.name == result.distribution
        ax.plot(
            zz,
            scipy_distribution(d.name).pdf(zz, *d.params),
            color=f"C{i + 1}",
            lw=2.2 if chosen else 1,
            ls="-" if chosen else "--",
            label=f"{d.name}{' (chosen)' if chosen else ''}, KS p {d.ks_pvalue:.2g}",
        )
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1e-4, 0.5 / len(z)))
    ax.set_xlabel("standardised residual")
    ax.set_title("Residual distribution (lowest BIC chosen)")
    ax.legend(fontsize=8)
