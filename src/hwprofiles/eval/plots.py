"""Plots of sweeps and transfer matrices (matplotlib, written as PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from hwprofiles.eval.summary import Summary


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    from hwprofiles.io import atomic_write

    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=130, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_curves(
    curves: Mapping[str, Sequence[tuple[float, Summary]]],
    path: str | Path,
    *,
    xlabel: str,
    title: str,
    logx: bool = True,
    chance: float | None = None,
    midpoints: Mapping[str, float | None] | None = None,
    ylabel: str = "test accuracy (mean, 95% CI)",
) -> Path:
    """Accuracy against a swept quantity, one line per model, with 95% CI bands (``ylabel``
    says over what: chip instances by default)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in curves.items():
        xs = [x for x, _ in points]
        line = ax.plot(xs, [s.mean for _, s in points], marker="o", ms=3, label=label)[0]
        ax.fill_between(
            xs, [s.ci_low for _, s in points], [s.ci_high for _, s in points], alpha=0.2, color=line.get_color()
        )
        mid = (midpoints or {}).get(label)
        if mid is not None:
            ax.axvline(mid, ls=":", color=line.get_color(), lw=1)
    if chance is not None:
        ax.axhline(chance, ls="--", color="grey", lw=1, label="chance")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_bars(
    values: Mapping[str, Summary], path: str | Path, *, title: str, ylabel: str = "test accuracy (mean, 95% CI)"
) -> Path:
    """One bar per item with its 95% CI."""
    plt = _pyplot()
    labels = list(values)
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(labels) + 2), 4))
    means = [values[k].mean for k in labels]
    errors = [[values[k].mean - values[k].ci_low for k in labels], [values[k].ci_high - values[k].mean for k in labels]]
    ax.bar(range(len(labels)), means, yerr=errors, capsize=3, color="tab:blue", alpha=0.8)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_heatmap(
    matrix: Sequence[Sequence[float | None]],
    rows: Sequence[str],
    cols: Sequence[str],
    path: str | Path,
    *,
    title: str,
    vmax: float | None = 1.0,
) -> Path:
    """A rows x columns heatmap with the value printed in each cell (blank where undefined)."""
    import numpy as np

    plt = _pyplot()
    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 * len(cols) + 3, 0.5 * len(rows) + 2))
    image = ax.imshow(data, cmap="viridis", vmin=0.0, vmax=vmax if vmax is not None else np.nanmax(data), aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=50, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("evaluated under")
    ax.set_ylabel("trained as")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]):
                ax.text(
                    j,
                    i,
                    f"{data[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if data[i, j] < 0.6 * (vmax or 1.0) else "black",
                )
    fig.colorbar(image, ax=ax, fraction=0.03)
    ax.set_title(title)
    return _save(fig, path)
