"""``hwprofiles demo``: the study's workflow, end to end, in about ten minutes on two CPU cores.

On Fashion-MNIST (a 10,000-image training subset, 2,000 test images) it trains
LeNet-5 and a half-width ResNet-20 clean, with 8-bit QAT and with noise-injection
training under one profile; evaluates every model under every shipped profile
over a few chip instances; sweeps the additive-Gaussian noise level for LeNet-5;
and writes the transfer tables, plots and a ``report.md``.
"""

from __future__ import annotations

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
    nit_profile: str = "pcm-joshi2020",
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
    """Run the demo into ``out``; return the path of its ``report.md``. With ``storage`` (a
    local path or fsspec URL) its checkpoints are also kept there and found there by a re-run
    (:func:`hwprofiles.eval.transfer.run_transfer`)."""
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
    echo(
        f"NIT trains under {nit_profile}; every model is evaluated under {len(profiles)} profiles x {samples} chip instances"
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
    minutes = (time.time() - started) / 60
    report = (
        "# hwprofiles demo report\n\n"
        f"Data: {splits.name} ({_size(splits.train)} training, {_size(splits.test)} test images, "
        f"source {splits.source}). "
        f"NIT trained under `{nit_profile}`; each model evaluated under every profile over {samples} chip instances "
        f"(seeds 0..{samples - 1}), each profile at its published noise level. Took {minutes:.1f} min.\n\n"
        "## Summary\n\n" + "\n".join(summary) + "\n\n" + "\n".join(sections)
    )
    return write_text(out / "report.md", report)


def _nit_wins(name: str, result: TransferResult, nit_profile: str) -> str:
    """The summary line of one model: in how many columns NIT is the best (or tied) row."""
    best_other = {c: max(result.cells[(r, c)].mean for r in result.rows) for c in result.cols}
    nit_row = f"nit:{nit_profile}"
    wins = [c for c in result.cols if result.cells[(nit_row, c)].mean >= best_other[c] - 1e-9]
    return (
        f"- {name}: NIT under {nit_profile} is the best (or tied) row in {len(wins)} of "
        f"{len(result.cols)} columns: {', '.join(wins)}."
    )


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
