"""Cross-hardware transfer: train under one profile, evaluate under all others.

Rows are how a model was trained (clean, QAT, NIT under each training profile);
columns are the profiles it is evaluated under. The transfer-efficiency matrix
divides each column by the accuracy of the model trained under that column's own
profile: 1.0 means training elsewhere cost nothing.

Noise levels differ wildly between profiles, so the scale each profile runs at is
a choice, recorded in the outputs:

``published``
    every profile at ``noise_scale`` 1, i.e. the numbers in its file (its
    published level; the Gaussian profiles at their file sigma).
``matched``
    each profile scaled so that the clean model loses ``target_drop`` of its
    accuracy (found by bisection in log scale on the clean model), the same scale
    used to train NIT under it. Columns then pose comparable difficulty.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwprofiles.eval.chips import (
    EvaluationResult,
    Summary,
    Trained,
    checkpoint_request,
    evaluate_checkpoint,
    load_trained,
)
from hwprofiles.eval.grid import GridStats, run_requests
from hwprofiles.io import write_text
from hwprofiles.profiles import load_profile
from hwprofiles.results import ResultsStore
from hwprofiles.train.config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.executors import Executor


@dataclass
class TransferResult:
    rows: list[str]
    cols: list[str]
    cells: dict[tuple[str, str], Summary]
    scales: dict[str, float]
    scale_mode: str
    checkpoints: dict[str, str] = field(default_factory=dict)

    def accuracy(self) -> list[list[float]]:
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

    # -- writers ---------------------------------------------------------------------
    def to_json(self) -> str:
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
        return (
            f"### Accuracy (mean ± half-width of the 95% CI over chip instances)\n\n{acc}\n\n"
            f"### Transfer efficiency (accuracy / accuracy of the model trained under the column's profile)\n\n{eff}\n\n"
            f"{worst_line}\n\nNoise scales ({self.scale_mode}): {scales}\n"
        )

    def write(self, out_dir: str | Path, stem: str = "transfer") -> dict[str, Path]:
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


def matched_scale(
    trained: Trained,
    profile_name: str,
    loaders: Any,
    *,
    target_drop: float,
    clean_accuracy: float,
    samples: int,
    store: ResultsStore | None,
    test_set: str,
    steps: int = 6,
    device: str = "cpu",
) -> float:
    """The noise scale at which ``trained`` loses ``target_drop`` of ``clean_accuracy``
    under ``profile_name`` (bisection in log10 scale over [1e-3, 1e3])."""
    target = clean_accuracy * (1.0 - target_drop)
    low, high = -3.0, 3.0
    for _ in range(steps):
        mid = (low + high) / 2
        acc = evaluate_checkpoint(
            trained,
            profile_name,
            loaders,
            samples=samples,
            noise_scale=10**mid,
            store=store,
            test_set=test_set,
            device=device,
        ).mean
        if acc > target:
            low = mid
        else:
            high = mid
    return float(10 ** ((low + high) / 2))


def transfer_configs(
    base: TrainConfig, train_profiles: Sequence[str], scales: dict[str, float], qat: bool = True
) -> list[TrainConfig]:
    """The runs of a transfer experiment: clean, QAT, and NIT under each training profile."""
    configs = [replace(base, method="clean", profile=None, noise_scale=None)]
    if qat:
        configs.append(replace(base, method="qat", profile=None, noise_scale=None))
    for name in train_profiles:
        configs.append(replace(base, method="nit", profile=name, noise_scale=scales.get(name)))
    return configs


def run_transfer(
    base: TrainConfig,
    *,
    train_profiles: Sequence[str],
    eval_profiles: Sequence[str],
    out_dir: str | Path,
    splits: Any,
    loaders: Any,
    samples: int = 5,
    scale_mode: str = "published",
    target_drop: float = 0.1,
    store: ResultsStore | None = None,
    test_set: str = "test",
    progress: bool = True,
    device: str = "cpu",
    on_event: Callable[[str], None] = lambda message: None,
    extra_models: Sequence[Trained] = (),
    executor: Executor | None = None,
    stats: GridStats | None = None,
) -> TransferResult:
    """Train (or reuse finished checkpoints of) every row, evaluate it under every column.

    ``extra_models`` (e.g. weights trained elsewhere, :func:`hwprofiles.eval.chips.load_weights`)
    are evaluated as further rows.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from hwprofiles.eval.labels import relabel
    from hwprofiles.train.checkpoint import load_checkpoint
    from hwprofiles.train.loop import train

    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"

    def checkpoint_for(config: TrainConfig) -> Path:
        scale = "" if config.noise_scale is None else f"-x{config.noise_scale:.3g}"
        return ckpt_dir / f"{config.model}-{config.label.replace(':', '-')}{scale}-s{config.seed}.pt"

    def finished(config: TrainConfig) -> bool:
        path = checkpoint_for(config)
        if not path.exists():
            return False
        meta = load_checkpoint(path)["meta"]
        return bool(meta.get("finished")) and TrainConfig.from_dict(meta["config"]) == config

    def trained_for(configs: Sequence[TrainConfig]) -> list[Trained]:
        """Train every config not yet finished (on the executor), then load them all."""
        todo = [c for c in configs if not finished(c)]
        for c in configs:
            on_event(
                f"reusing finished checkpoint {checkpoint_for(c)}"
                if c not in todo
                else f"training {c.label} -> {checkpoint_for(c)}"
            )
        if executor is None or executor.name == "local":
            for c in todo:
                train(c, checkpoint_for(c), resume=True, progress=progress, data=splits, device=device)
        elif todo:
            train_on(executor, [(c, checkpoint_for(c)) for c in todo], splits, device=device, on_event=on_event)
        return [load_trained(checkpoint_for(c), splits) for c in configs]

    clean = trained_for([replace(base, method="clean", profile=None, noise_scale=None)])[0]
    scales: dict[str, float] = {}
    names = list(dict.fromkeys([*eval_profiles, *train_profiles]))
    if scale_mode == "matched":
        clean_acc = evaluate_checkpoint(
            clean, "ideal", loaders, samples=1, store=store, test_set=test_set, device=device
        ).mean
        for name in names:
            if not load_profile(name).noise:
                scales[name] = 1.0
                continue
            scales[name] = matched_scale(
                clean,
                name,
                loaders,
                target_drop=target_drop,
                clean_accuracy=clean_acc,
                samples=max(2, samples // 2),
                store=store,
                test_set=test_set,
                device=device,
            )
            on_event(f"{name}: matched noise scale {scales[name]:.3g}")
    elif scale_mode == "published":
        scales = {name: float(load_profile(name).noise_scale) for name in names}
    else:
        raise ValueError(f"unknown scale mode {scale_mode!r}: use published or matched")

    models = relabel([clean] + trained_for(transfer_configs(base, train_profiles, scales)[1:]) + list(extra_models))
    rows = [m.label for m in models]
    cells: dict[tuple[str, str], Summary] = {}
    pairs = [(model, col) for model in models for col in eval_profiles]
    requests = [
        checkpoint_request(
            model, col, loaders, samples=samples, noise_scale=scales[col], test_set=test_set, device=device
        )
        for model, col in pairs
    ]
    stats = stats if stats is not None else GridStats()
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[state]}"),
        disable=not progress,
    )
    with bar:
        task = bar.add_task("evaluating chip instances", total=len(requests) * samples, state="")
        results = run_requests(
            requests,
            store=store,
            executor=executor,
            on_sample=lambda: bar.advance(task),
            stats=stats,
            on_progress=lambda done, running, failed: bar.update(
                task, state=f"done {done} running {running} failed {failed}"
            ),
        )
    for (model, col), result in zip(pairs, results):
        if result is None:  # named in stats.failures
            result = EvaluationResult(float("nan"), float("nan"), float("nan"), float("nan"), 0, profile=col)
        cells[(model.label, col)] = result
    result = TransferResult(
        rows,
        list(eval_profiles),
        cells,
        {c: scales[c] for c in eval_profiles},
        scale_mode,
        {m.label: str(m.path) for m in models},
    )
    result.write(out)
    return result


def _train_to_bytes(config: TrainConfig, data: Any, device: str) -> bytes:
    """Runs on a worker: train ``config`` into a scratch file and return the checkpoint's bytes,
    so the worker needs no disk shared with the driver."""
    import tempfile

    from hwprofiles.train.loop import train

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "checkpoint.pt"
        train(config, path, progress=False, data=data, device=device)
        return path.read_bytes()


def train_on(
    executor: Executor,
    runs: Sequence[tuple[TrainConfig, Path]],
    data: Any,
    *,
    device: str = "cpu",
    on_event: Callable[[str], None] = lambda message: None,
) -> None:
    """Train several runs as tasks of ``executor``; the driver writes each checkpoint
    (atomically) as it arrives. A run that fails is reported by name; the others go on.

    Raises:
        HwProfilesError: naming every run that failed.
    """
    from hwprofiles.errors import HwProfilesError
    from hwprofiles.io import atomic_write

    failed: list[str] = []

    def arrived(index: int, value: bytes | None, error: BaseException | None) -> None:
        config, path = runs[index]
        if error is not None:
            failed.append(f"{config.label}: {error}")
            on_event(f"training {config.label} failed: {error}")
            return
        with atomic_write(path, "wb") as handle:
            handle.write(value)
        on_event(f"trained {config.label} -> {path}")

    executor.map(_train_to_bytes, [(config, data, device) for config, _ in runs], arrived, devices=[device] * len(runs))
    if failed:
        raise HwProfilesError("training failed: " + "; ".join(failed))
