"""``hwprofiles demo``: the study's workflow, end to end, in about ten minutes on two CPU cores.

On Fashion-MNIST (a 10,000-image training subset, 2,000 test images) it trains
LeNet-5 and a half-width ResNet-20 clean, with 8-bit QAT, with noise-injection
training (NIT) under additive Gaussian noise at a level that matters (sigma 0.5), and
with NIT under every profile at once; evaluates every model under every shipped
profile over a few chip instances; sweeps the additive-Gaussian noise level for
LeNet-5; and writes a ``report.md`` that opens with what the numbers show (the
midpoints, and accuracies with their intervals over chips), then the transfer tables
and plots.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sized
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from hwprofiles.errors import HwProfilesError
from hwprofiles.io import write_text
from hwprofiles.storage import Storage, open_storage

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.eval.sweep import SweepReport
    from hwprofiles.eval.transfer_report import TransferResult
    from hwprofiles.executors import Executor
    from hwprofiles.results import ResultsStore

SWEPT_PROFILE = "gaussian-additive"
NIT_SCALE = 5.0  # sigma 0.5 under gaussian-additive: where the clean LeNet-5 has lost most of its accuracy


class Evaluation(TypedDict):
    """What the demo's transfer matrices and its sweep share: how each chip instance is
    evaluated and where it is stored."""

    samples: int
    store: ResultsStore
    test_set: str
    device: str
    executor: Executor | None


@dataclass(frozen=True)
class DemoModel:
    """One architecture of the demo and how long it trains (fields of :class:`TrainConfig`)."""

    model: str
    width: float
    epochs: int
    batch_size: int = 128
    lr: float = 1e-3


@dataclass(frozen=True)
class DemoPlan:
    """The data and models of a demo run, and the points of its noise sweep."""

    dataset: str
    train_subset: int | None
    test_subset: int | None
    models: tuple[DemoModel, ...]
    sweep_points: int


FULL = DemoPlan(
    dataset="fashion-mnist",
    train_subset=10_000,
    test_subset=2_000,
    models=(DemoModel("lenet5", 1.0, 4, lr=3e-3), DemoModel("resnet20", 0.5, 2, lr=2e-3)),
    sweep_points=9,
)
QUICK = DemoPlan(
    dataset="synthetic",
    train_subset=None,
    test_subset=None,
    models=(DemoModel("lenet5", 0.5, 3, batch_size=32, lr=5e-3),),
    sweep_points=5,
)


def _size(dataset: Any) -> int:
    """The number of samples of a split (torch's Dataset type does not promise a length)."""
    return len(cast(Sized, dataset))


def run_demo(
    out: str | Path,
    *,
    nit_profile: str = SWEPT_PROFILE,
    nit_scale: float | None = NIT_SCALE,
    mixed: str | None = "all",
    samples: int = 3,
    data_root: str | None = None,
    download: bool = False,
    quick: bool = False,
    device: str = "cpu",
    executor: Executor | None = None,
    storage: str | Path | Storage | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> Path:
    """Run the demo into ``out``; return the path of its ``report.md``.

    NIT trains under ``nit_profile`` at noise scale ``nit_scale`` (None: the profile's
    own), and under the profile set ``mixed`` (``NAME,NAME:WEIGHT,...`` or ``all``; None:
    no such row). With ``storage`` (a local path or fsspec URL) its checkpoints are also
    kept there and found there by a re-run (:func:`hwprofiles.eval.transfer.run_transfer`)."""
    import hwprofiles
    from hwprofiles.data import load_dataset
    from hwprofiles.eval.sweep import log_grid, run_sweep
    from hwprofiles.eval.trained import evaluation_loaders, load_trained, test_set_id
    from hwprofiles.eval.transfer import run_transfer
    from hwprofiles.results import ResultsStore
    from hwprofiles.train import TrainConfig

    plan = QUICK if quick else FULL
    out = Path(out)
    started = time.time()
    hwprofiles.load_profile(nit_profile)
    checkpoints_at = None if storage is None else open_storage(storage)  # a bad one fails before any work
    splits = load_dataset(
        plan.dataset,
        root=data_root,
        download=download,
        train_subset=plan.train_subset,
        test_subset=plan.test_subset,
        seed=0,
    )
    loaders = evaluation_loaders(splits)
    test_set = test_set_id(splits, plan.test_subset)
    store = ResultsStore(out / "results.sqlite")
    profiles = hwprofiles.list_profiles()
    echo(f"data: {splits.name} from {splits.source}: {_size(splits.train)} training / {_size(splits.test)} test images")
    nit_what = f"{nit_profile}" + ("" if nit_scale is None else f" at noise scale {nit_scale:g}")
    echo(
        f"NIT trains under {nit_what}"
        + (f" and under profiles {mixed}" if mixed else "")
        + f"; every model is evaluated under {len(profiles)} profiles x {samples} chip instances"
    )

    # the transfer matrices and the sweep are evaluated alike
    evaluation: Evaluation = {
        "samples": samples,
        "store": store,
        "test_set": test_set,
        "device": device,
        "executor": executor,
    }
    sections: list[str] = []
    summary: list[str] = []
    finding = ""
    for spec in plan.models:
        echo(f"\n== {spec.model} (width {spec.width}, {spec.epochs} epochs) ==")
        base = TrainConfig(
            **asdict(spec),
            dataset=plan.dataset,
            train_subset=plan.train_subset,
            test_subset=plan.test_subset,
            data_root=data_root,
        )
        result = run_transfer(
            base,
            train_profiles=[nit_profile],
            mixed_profiles=[mixed] if mixed else [],
            train_noise_scale=nit_scale,
            eval_profiles=profiles,
            out_dir=out / spec.model,
            splits=splits,
            loaders=loaders,
            progress=progress,
            on_event=echo,
            storage=checkpoints_at,
            **evaluation,
        )
        echo(result.to_markdown())
        sections.append(
            f"## {spec.model} (width {spec.width}, {spec.epochs} epochs)\n\n{result.to_markdown()}\n"
            f"![accuracy]({spec.model}/transfer.png)\n"
        )
        summary.append(_nit_wins(spec.model, result, nit_profile))
        if spec is plan.models[0]:
            sweep = run_sweep(
                [load_trained(path, splits) for path in result.checkpoints.values()],
                SWEPT_PROFILE,
                loaders,
                over="noise",
                grid=log_grid(1e-2, 1e2, plan.sweep_points),
                chance=1 / splits.num_classes,
                **evaluation,
            )
            sections.append(_sweep_section(spec.model, sweep, out))
            finding = what_this_shows(spec.model, sweep, result)
    minutes = (time.time() - started) / 60
    report = (
        "# hwprofiles demo report\n\n"
        f"Data: {splits.name} ({_size(splits.train)} training, {_size(splits.test)} test images, "
        f"source {splits.source}). "
        f"NIT trained under `{nit_what}`"
        + (f" and under `{mixed}` at once" if mixed else "")
        + f"; each model evaluated under every profile over {samples} chip instances "
        f"(seeds 0..{samples - 1}), each profile at its published noise level. Took {minutes:.1f} min.\n\n"
        + finding
        + "## Summary\n\n"
        + "\n".join(summary)
        + "\n\n"
        + "\n".join(sections)
    )
    return write_text(out / "report.md", report)


def _nit_wins(name: str, result: TransferResult, nit_profile: str) -> str:
    """The summary line of one model: in how many columns NIT is the best (or tied) row."""
    best_other = {c: max(result.cells[(r, c)].mean for r in result.rows) for c in result.cols}
    nit_row = f"nit:{nit_profile}"
    wins = [c for c in result.cols if result.cells[(nit_row, c)].mean >= best_other[c] - 1e-9]
    where = f"{len(wins)} of {len(result.cols)} columns ({', '.join(wins)})" if wins else "no column"
    return f"- {name}: NIT under {nit_profile} is the best (or tied) row in {where}."


def what_this_shows(name: str, sweep: SweepReport, result: TransferResult) -> str:
    """The report's opening: each model's midpoint, and the accuracies (with their 95%
    intervals over chips) at the sweep point nearest the clean model's midpoint; then how
    the rows trained under several profiles at once fare across the transfer matrix."""
    mids = sweep.midpoints

    def mid(label: str) -> str:
        value = mids.get(label)
        return "not reached" if value is None else f"{value:.3g}"

    lines = [
        "## What this shows",
        f"{name} under additive Gaussian noise ({SWEPT_PROFILE}, sigma = 0.1 x noise scale): the noise scale where "
        "accuracy falls halfway from clean accuracy to chance (the midpoint) is "
        + ", ".join(f"**{mid(label)}** for {label}" for label in sweep.curves)
        + ".",
    ]
    clean_mid = mids.get("clean")
    if clean_mid is not None and sweep.curves.get("clean"):
        x = min((p for p, _ in sweep.curves["clean"]), key=lambda p: abs(math.log(p / clean_mid)))
        cells = []
        for label, curve in sweep.curves.items():
            at = dict(curve).get(x)
            if at is not None:
                cells.append(f"{label} {at.mean:.3f} [{at.ci_low:.3f}, {at.ci_high:.3f}]")
        lines.append(
            f"At noise scale {x:.3g}, near the clean model's midpoint, accuracy (95% interval over "
            f"{sweep.samples} chips): " + "; ".join(cells) + "."
        )
    if "ideal" in result.cols:
        lines.append(
            "Noise-free (the ideal column): "
            + "; ".join(f"{r} {result.cells[(r, 'ideal')].mean:.3f}" for r in result.rows)
            + ": robustness to strong noise costs accuracy where there is little."
        )
    for row, _, _ in result.many_profile_rows():
        beats = [c for c in result.cols if result.cells[(row, c)].mean > result.cells[("clean", c)].mean]
        lines.append(
            f"Trained under every profile at once, {row} beats the clean model under "
            + (f"{len(beats)} of {len(result.cols)} profiles ({', '.join(beats)})" if beats else "no profile")
            + "."
        )
    lines.append(
        "One training seed per model: differences within a few points may not hold for other seeds "
        "(benchmarks/reproduce_study.py states the study's claims with intervals over seeds)."
    )
    return "\n\n".join(lines) + "\n\n"


def _sweep_section(name: str, sweep: SweepReport, out: Path) -> str:
    """Plot the curves of a noise sweep with their midpoints; return the report's section."""
    from hwprofiles.eval import plots

    if sweep.failures:
        raise HwProfilesError("; ".join(sweep.failures))
    plot = plots.plot_curves(
        sweep.curves,
        out / f"sweep-{SWEPT_PROFILE}-{name}.png",
        xlabel=f"noise scale of {SWEPT_PROFILE} (sigma = 0.1 x scale)",
        title=f"{name}: accuracy under additive Gaussian noise",
        chance=sweep.chance,
        midpoints=sweep.midpoints,
    )
    lines = "\n".join(f"| {k} | {'not reached' if v is None else f'{v:.3g}'} |" for k, v in sweep.midpoints.items())
    return (
        f"### {name}: additive-Gaussian sweep\n\n![sweep]({plot.name})\n\n"
        "Midpoint: the noise scale where accuracy falls halfway from clean accuracy to chance, "
        f"interpolated in log scale.\n\n| model | midpoint noise scale |\n|---|---|\n{lines}\n"
    )
