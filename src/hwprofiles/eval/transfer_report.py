"""The transfer matrix: accuracy of each training (rows) under each evaluation profile
(columns), the transfer efficiency, and their tables (CSV, JSON, Markdown) and heatmaps.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hwprofiles.eval.summary import Summary
from hwprofiles.io import write_text


@dataclass
class TransferResult:
    """A transfer matrix: ``cells[(row, col)]`` is the accuracy of the model trained as
    ``row`` under profile ``col``, run at noise scale ``scales[col]``."""

    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], Summary]
    scales: dict[str, float]
    scale_mode: str
    checkpoints: dict[str, str] = field(default_factory=dict)

    def accuracy(self) -> list[list[float]]:
        """The mean accuracies, row by row."""
        return [[self.cells[(r, c)].mean for c in self.cols] for r in self.rows]

    def efficiency(self) -> list[list[float | None]]:
        """acc[row, col] / acc[NIT under col, col]; None where no model was trained under col."""
        out: list[list[float | None]] = []
        for r in self.rows:
            line: list[float | None] = []
            for c in self.cols:
                own = self.cells.get((f"nit:{c}", c))
                line.append(None if own is None or own.mean == 0 else self.cells[(r, c)].mean / own.mean)
            out.append(line)
        return out

    def worst_off_diagonal(self) -> tuple[float, str, str] | None:
        """The lowest transfer efficiency of an NIT model evaluated under another profile."""
        worst = None
        for i, r in enumerate(self.rows):
            if not r.startswith("nit:"):
                continue
            for j, c in enumerate(self.cols):
                value = self.efficiency()[i][j]
                if value is not None and r != f"nit:{c}" and (worst is None or value < worst[0]):
                    worst = (value, r, c)
        return worst

    def many_profile_rows(self) -> list[tuple[str, float | None, str | None]]:
        """Each row trained under several profiles at once (``nit:a+b``, ``nit:all``), with its
        lowest transfer efficiency over the columns that have a matched model, and that column."""
        out: list[tuple[str, float | None, str | None]] = []
        eff = self.efficiency()
        for i, r in enumerate(self.rows):
            method, _, profiles = r.partition(":")
            if method not in ("nit", "vant") or not ("+" in profiles or profiles.split("[")[0] == "all"):
                continue
            values = [(v, c) for v, c in zip(eff[i], self.cols) if v is not None]
            low = min(values) if values else (None, None)
            out.append((r, low[0], low[1]))
        return out

    # -- writers ---------------------------------------------------------------------
    def to_json(self) -> str:
        """Rows, columns, scales, every cell, the efficiencies and the checkpoints."""
        return json.dumps(
            {
                "rows": self.rows,
                "cols": self.cols,
                "scale_mode": self.scale_mode,
                "noise_scales": self.scales,
                "accuracy": {f"{r} | {c}": s.as_dict() for (r, c), s in self.cells.items()},
                "transfer_efficiency": self.efficiency(),
                "worst_off_diagonal": self.worst_off_diagonal(),
                "checkpoints": self.checkpoints,
            },
            indent=2,
        )

    def to_csv(self) -> str:
        """One line per cell: trained, evaluated, scale, the summary and the efficiency."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["trained", "evaluated", "noise_scale", "mean", "std", "ci_low", "ci_high", "n", "efficiency"])
        eff = self.efficiency()
        for i, r in enumerate(self.rows):
            for j, c in enumerate(self.cols):
                s = self.cells[(r, c)]
                e = eff[i][j]
                writer.writerow(
                    [
                        r,
                        c,
                        self.scales[c],
                        f"{s.mean:.4f}",
                        f"{s.std:.4f}",
                        f"{s.ci_low:.4f}",
                        f"{s.ci_high:.4f}",
                        s.n,
                        "" if e is None else f"{e:.4f}",
                    ]
                )
        return buffer.getvalue()

    def to_markdown(self) -> str:
        """Both tables, the worst off-diagonal efficiency and the noise scales."""

        def table(values: Callable[[int, int], str]) -> str:
            head = "| trained \\ evaluated | " + " | ".join(self.cols) + " |"
            sep = "|---|" + "---|" * len(self.cols)
            lines = [
                f"| {r} | " + " | ".join(values(i, j) for j in range(len(self.cols))) + " |"
                for i, r in enumerate(self.rows)
            ]
            return "\n".join([head, sep, *lines])

        acc = table(
            lambda i, j: (
                f"{self.cells[(self.rows[i], self.cols[j])].mean:.3f} ± "
                f"{(self.cells[(self.rows[i], self.cols[j])].ci_high - self.cells[(self.rows[i], self.cols[j])].mean):.3f}"
            )
        )
        eff_m = self.efficiency()
        eff = table(lambda i, j: "–" if eff_m[i][j] is None else f"{eff_m[i][j]:.3f}")
        scales = ", ".join(f"{c}: {self.scales[c]:.3g}" for c in self.cols)
        worst = self.worst_off_diagonal()
        worst_line = "Worst off-diagonal transfer efficiency: " + (
            f"**{worst[0]:.3f}** ({worst[1]} evaluated under {worst[2]})"
            if worst
            else "undefined (no NIT row with another column)"
        )
        if worst and worst[0] > 1:
            # Every NIT model beats each column's own model there: the fault is in the reference.
            worst_line += (
                ": above 1, every NIT model does better under each other profile than the model trained "
                "under that profile, so those references are weak (under-trained, or trained at another "
                "noise level than the column's) and this figure does not judge transfer"
            )
        mixed = "".join(
            f"Trained under several profiles at once, {row} keeps at least **{low:.3f}** of the matched "
            f"model's accuracy (lowest under {col}).\n\n"
            if low is not None
            else f"{row}: no column has a matched model to compare with.\n\n"
            for row, low, col in self.many_profile_rows()
        )
        return (
            f"### Accuracy (mean ± half-width of the 95% CI over chip instances)\n\n{acc}\n\n"
            f"### Transfer efficiency (accuracy / accuracy of the model trained under the column's profile)\n\n{eff}\n\n"
            f"{worst_line}\n\n{mixed}Noise scales ({self.scale_mode}): {scales}\n"
        )

    def write(self, out_dir: str | Path, stem: str = "transfer") -> dict[str, Path]:
        """The CSV, JSON and Markdown tables and the heatmaps, in ``out_dir``."""
        from hwprofiles.eval.plots import plot_heatmap

        out = Path(out_dir)
        paths = {
            "csv": write_text(out / f"{stem}.csv", self.to_csv()),
            "json": write_text(out / f"{stem}.json", self.to_json()),
            "md": write_text(out / f"{stem}.md", self.to_markdown()),
            "png": plot_heatmap(
                self.accuracy(),
                self.rows,
                self.cols,
                out / f"{stem}.png",
                title="Accuracy: trained as (row) x evaluated under (column)",
            ),
        }
        if any(v is not None for row in self.efficiency() for v in row):
            paths["efficiency_png"] = plot_heatmap(
                self.efficiency(),
                self.rows,
                self.cols,
                out / f"{stem}-efficiency.png",
                title="Transfer efficiency",
                vmax=None,
            )
        return paths
