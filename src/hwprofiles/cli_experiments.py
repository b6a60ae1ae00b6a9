"""The experiment commands: train, eval, sweep, transfer, results, demo.

Each imports torch inside its function, so ``hwprofiles profiles ...`` stays quick.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from hwprofiles.cli import _console, _table, app

OUT = Path("hwprofiles-out")

DataRoot = Annotated[
    str | None, typer.Option("--data-root", help="A torchvision dataset root (or a folder of IDX files).")
]
Download = Annotated[
    bool, typer.Option("--download", help="Download the dataset through torchvision (needs internet).")
]
Dataset = Annotated[str, typer.Option("--dataset", help="fashion-mnist, mnist, cifar10, cifar100, svhn or synthetic.")]
TrainSubset = Annotated[
    int | None, typer.Option("--train-subset", help="Train on a seeded random subset of N samples.")
]
TestSubset = Annotated[
    int | None, typer.Option("--test-subset", help="Evaluate on a seeded random subset of N test samples.")
]
Samples = Annotated[
    int, typer.Option("--samples", "-k", min=1, help="Chip instances per evaluation (program(seed=i), i < K).")
]
ResultsDb = Annotated[
    Path | None,
    typer.Option(
        "--results", help="SQLite results database [default: hwprofiles-out/results.sqlite or $HWPROFILES_RESULTS]."
    ),
]


def _check_device(value: str) -> str:
    """A device torch knows and this machine has, or a usage error that says which to use."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise typer.BadParameter(f"'{value}' is not a torch device: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise typer.BadParameter("CUDA is not available on this machine: use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise typer.BadParameter(f"there is no {value}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif device.type != "cpu":
        raise typer.BadParameter(f"device type '{device.type}' is not supported: use cpu or cuda")
    return value


class Optimizer(str, Enum):
    adam = "adam"
    sgd = "sgd"


class Schedule(str, Enum):
    constant = "constant"
    ramp = "ramp"


Device = Annotated[str, typer.Option("--device", callback=_check_device, help="torch device: cpu, cuda or cuda:N.")]


class ExecutorName(str, Enum):
    local = "local"
    ray = "ray"


ExecutorOpt = Annotated[
    ExecutorName,
    typer.Option(
        "--executor",
        case_sensitive=False,
        help="Where evaluations (and transfer's training runs) run: local (this process) or ray (tasks on a Ray cluster).",
    ),
]
RayAddress = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        envvar="HWPROFILES_RAY_ADDRESS",
        help="Ray cluster to join: auto (the one this machine is in) or HOST:PORT; none starts Ray on this machine.",
    ),
]


def _executor(name: ExecutorName, address: str | None) -> Any:
    from hwprofiles.executors import get_executor

    if address and name is not ExecutorName.ray:
        raise typer.BadParameter("--ray-address needs --executor ray", param_hint="--ray-address")
    return get_executor(name.value, address=address)


def _grid_progress(quiet: bool, total: int | None, title: str) -> Any:
    """A progress bar over chip instances, with done / running / failed evaluations."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[state]}"),
        disable=quiet,
    )
    task = bar.add_task(title, total=total, state="")
    return (
        bar,
        (lambda: bar.advance(task)),
        (lambda done, running, failed: bar.update(task, state=f"done {done} running {running} failed {failed}")),
    )


def _report_failures(stats: Any) -> None:
    """The grid's time summary; failed evaluations by name, and a non-zero exit if any."""
    typer.echo(stats.summary(), err=True)
    if stats.failures:
        for failure in stats.failures:
            typer.echo(f"failed: {failure.name}: {failure.error}", err=True)
        raise typer.Exit(1)


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Checkpoints = Annotated[
    list[Path] | None, typer.Argument(help="Checkpoints written by hwprofiles train.", show_default=False)
]
ModelName = Annotated[
    str | None,
    typer.Option(
        "--model", help="Architecture of --weights: a zoo name, torchvision:NAME or module:factory (your own)."
    ),
]
Weights = Annotated[
    list[Path] | None,
    typer.Option(
        "--weights",
        help="A state_dict of --model trained elsewhere (torch.save(model.state_dict(), path)); repeatable.",
    ),
]
Width = Annotated[float, typer.Option("--width", min=0.05, max=16.0, help="Width multiplier of zoo models.")]
EvalDataset = Annotated[
    str | None,
    typer.Option("--dataset", help="Dataset of --weights [default: the first checkpoint's, else fashion-mnist]."),
]


def _load_data(
    dataset: str,
    data_root: str | None,
    download: bool,
    train_subset: int | None,
    test_subset: int | None,
    seed: int = 0,
) -> Any:
    from hwprofiles.data import load_dataset

    return load_dataset(
        dataset, root=data_root, download=download, train_subset=train_subset, test_subset=test_subset, seed=seed
    )


def _loaders(splits: Any, batch_size: int = 256) -> Any:
    from hwprofiles.data import make_loaders

    return make_loaders(splits, batch_size, seed=0, shuffle=False)


def _profiles(names: list[str] | None, default_all: bool = True) -> list[str]:
    import hwprofiles

    if not names or names == ["all"]:
        return hwprofiles.list_profiles() if default_all else []
    for name in names:
        hwprofiles.load_profile(name)  # unknown names fail here, with close matches
    return names


def _store(path: Path | None) -> Any:
    from hwprofiles.results import ResultsStore

    return ResultsStore(path)


def _trained_models(
    checkpoints: list[Path] | None,
    model: str | None,
    weights: list[Path] | None,
    width: float,
    dataset: str | None,
    data_root: str | None,
    download: bool,
    test_subset: int | None,
) -> tuple[Any, list[Any]]:
    """The data and the models to evaluate: checkpoints, and weights trained elsewhere.
    Labels are made unique after what tells the models apart."""
    from hwprofiles.eval.chips import load_trained, load_weights
    from hwprofiles.eval.labels import relabel
    from hwprofiles.train.checkpoint import load_checkpoint

    checkpoints, weights = list(checkpoints or []), list(weights or [])
    if not checkpoints and not weights:
        raise typer.BadParameter(
            "give checkpoints, or --model and --weights for a model trained elsewhere", param_hint="CHECKPOINTS"
        )
    if weights and not model:
        raise typer.BadParameter(
            "--weights needs --model: the architecture the weights belong to", param_hint="--model"
        )
    first = load_checkpoint(checkpoints[0])["meta"].get("config", {}) if checkpoints else {}
    name = dataset or first.get("dataset") or "fashion-mnist"
    # The training run's root is a hint only: on another machine the data live elsewhere.
    trained_root = first.get("data_root")
    root = data_root or (trained_root if trained_root and Path(trained_root).exists() else None)
    splits = _load_data(name, root, download, None, test_subset)
    models = [load_trained(p, splits) for p in checkpoints]
    models += [load_weights(p, model, splits, width=width) for p in weights]  # type: ignore[arg-type]
    return splits, relabel(models)


def _summary_table(rows: list[tuple[str, str, Any]], title: str) -> None:
    table = _table("model", "profile", "mean acc", "std", "95% CI", "K")
    table.title = title
    for model, profile, s in rows:
        table.add_row(model, profile, f"{s.mean:.4f}", f"{s.std:.4f}", f"[{s.ci_low:.4f}, {s.ci_high:.4f}]", str(s.n))
    _console().print(table)


@app.command("train")
def train_command(
    model: Annotated[
        str, typer.Option("--model", help="A zoo model (hwprofiles models) or torchvision:NAME.")
    ] = "lenet5",
    dataset: Dataset = "fashion-mnist",
    method: Annotated[str, typer.Option("--method", help="clean, qat, qat-learned, nit or vant.")] = "clean",
    profile: Annotated[str | None, typer.Option("--profile", help="Training profile of nit/vant.")] = None,
    noise_scale: Annotated[
        float | None, typer.Option("--noise-scale", min=0, help="Training noise scale [default: the profile's].")
    ] = None,
    schedule: Annotated[
        Schedule,
        typer.Option("--schedule", case_sensitive=False, help="constant, or ramp (linear from 0 over --ramp-epochs)."),
    ] = Schedule.constant,
    ramp_epochs: Annotated[int, typer.Option("--ramp-epochs", min=1)] = 1,
    bits: Annotated[int, typer.Option("--bits", min=2, max=16, help="QAT bits.")] = 8,
    act_scale: Annotated[float, typer.Option("--act-scale", min=0, help="QAT constant activation step.")] = 1.0,
    alpha: Annotated[float, typer.Option("--alpha", help="VANT alpha.")] = 0.45,
    theta: Annotated[float, typer.Option("--theta", help="VANT theta.")] = 0.66,
    optimizer: Annotated[
        Optimizer, typer.Option("--optimizer", case_sensitive=False, help="adam or sgd.")
    ] = Optimizer.adam,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    width: Width = 1.0,
    train_subset: TrainSubset = None,
    test_subset: TestSubset = None,
    data_root: DataRoot = None,
    download: Download = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Checkpoint path [default: hwprofiles-out/checkpoints/MODEL-METHOD-sSEED.pt]."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint at --out.")] = False,
    results: ResultsDb = None,
    device: Device = "cpu",
    quiet: Quiet = False,
    nproc: Annotated[
        int,
        typer.Option(
            "--nproc",
            min=1,
            help="Train data-parallel in N processes on this machine (CUDA: one GPU each); --batch-size stays the global batch.",
        ),
    ] = 1,
) -> None:
    """Train a model clean, with QAT, or with noise injection under a profile."""
    from hwprofiles.train import TrainConfig, train

    config = TrainConfig(
        model=model,
        dataset=dataset,
        method=method,
        profile=profile,
        noise_scale=noise_scale,
        schedule=schedule.value,  # type: ignore[arg-type]
        ramp_epochs=ramp_epochs,
        bits=bits,
        act_scale=act_scale,
        alpha=alpha,
        theta=theta,
        optimizer=optimizer.value,  # type: ignore[arg-type]
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        width=width,
        train_subset=train_subset,
        test_subset=test_subset,
        data_root=data_root,
        download=download,
    )
    path = out or OUT / "checkpoints" / f"{model.replace(':', '-')}-{config.label.replace(':', '-')}-s{seed}.pt"
    result = train(config, path, resume=resume, device=device, progress=not quiet, nproc=nproc)
    if result.rank != 0:  # under torchrun every process runs this command; rank 0 reports
        return
    from hwprofiles.eval.chips import load_trained

    trained = load_trained(path)
    _store(results).record_run(str(path), trained.meta, result.test_accuracy, True, model_hash=trained.digest)
    typer.echo(f"test accuracy {result.test_accuracy:.4f}; checkpoint written to {path}")


@app.command("eval")
def eval_command(
    checkpoints: Checkpoints = None,
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", "-p", help="Evaluation profile (repeatable); 'all' for every profile."),
    ] = None,
    model: ModelName = None,
    weights: Weights = None,
    width: Width = 1.0,
    dataset: EvalDataset = None,
    samples: Samples = 5,
    noise_scale: Annotated[float | None, typer.Option("--noise-scale", min=0)] = None,
    t_inference: Annotated[
        float | None, typer.Option("--t-inference", min=0, help="Seconds since programming.")
    ] = None,
    test_subset: TestSubset = None,
    data_root: DataRoot = None,
    download: Download = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")] = None,
    conversion: Annotated[
        bool,
        typer.Option(
            "--conversion",
            help="Also list, per model, every matrix layer: converted to its noisy twin, or left float and why.",
        ),
    ] = False,
    results_db: ResultsDb = None,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddress = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Accuracy of checkpoints (or weights trained elsewhere) under profiles, over K chip instances."""
    from hwprofiles.eval.chips import checkpoint_request, test_set_id
    from hwprofiles.eval.grid import GridStats, run_requests

    names = _profiles(profile)
    splits, models = _trained_models(checkpoints, model, weights, width, dataset, data_root, download, test_subset)
    runner = _executor(executor, ray_address)
    loaders = _loaders(splits)
    test_set = test_set_id(splits, test_subset)
    if conversion:
        from hwprofiles.nn.convert import conversion_report

        for trained in models:
            typer.echo(f"{trained.label} under {names[0]}:\n{conversion_report(trained.model, names[0])}\n")
    cells = [(trained, name) for trained in models for name in names]
    requests = [
        checkpoint_request(
            trained,
            name,
            loaders,
            samples=samples,
            noise_scale=noise_scale,
            t_inference_s=t_inference,
            test_set=test_set,
            device=device,
        )
        for trained, name in cells
    ]
    stats = GridStats()
    bar, advance, progress = _grid_progress(quiet, len(requests) * samples, "chip instances")
    with bar:
        results = run_requests(
            requests, store=_store(results_db), executor=runner, on_sample=advance, on_progress=progress, stats=stats
        )
    rows, out = [], []
    for (trained, name), s in zip(cells, results):
        if s is None:
            continue
        rows.append((trained.label, name, s))
        out.append({"checkpoint": str(trained.path), "trained": trained.label, "eval_profile": name, **s.as_dict()})
    _summary_table(rows, f"accuracy over {samples} chip instances")
    if json_out:
        from hwprofiles.io import write_text

        write_text(json_out, json.dumps(out, indent=2))
        typer.echo(f"results written to {json_out}")
    _report_failures(stats)


@app.command("sweep")
def sweep_command(
    checkpoints: Checkpoints = None,
    profile: Annotated[str, typer.Option("--profile", "-p", help="The profile to sweep.")] = "gaussian-additive",
    over: Annotated[
        str,
        typer.Option("--over", help="noise (noise scale), time (t_inference) or layer (one noisy layer at a time)."),
    ] = "noise",
    model: ModelName = None,
    weights: Weights = None,
    width: Width = 1.0,
    dataset: EvalDataset = None,
    low: Annotated[float, typer.Option("--low", min=0)] = 1e-2,
    high: Annotated[float, typer.Option("--high", min=0)] = 1e2,
    points: Annotated[int, typer.Option("--points", min=2, help="Grid points (log-spaced).")] = 17,
    noise_scale: Annotated[
        float | None, typer.Option("--noise-scale", min=0, help="Noise scale of the time and layer sweeps.")
    ] = None,
    samples: Samples = 5,
    test_subset: TestSubset = None,
    data_root: DataRoot = None,
    download: Download = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the plot and JSON.")] = OUT / "sweeps",
    results: ResultsDb = None,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddress = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Accuracy against noise scale (with the midpoint), time since programming, or per layer."""
    import hwprofiles
    from hwprofiles.eval import sweep
    from hwprofiles.eval.chips import test_set_id
    from hwprofiles.eval.grid import GridStats

    if over not in sweep.SWEEPS:
        raise typer.BadParameter(f"use {', '.join(sweep.SWEEPS)}", param_hint="--over")
    if over == "noise" and not 0 < low < high:
        raise typer.BadParameter("the noise grid is log-spaced: give 0 < --low < --high", param_hint="--low/--high")
    prof = hwprofiles.load_profile(profile)
    if noise_scale is not None:
        prof = prof.with_noise_scale(noise_scale)
    splits, models = _trained_models(checkpoints, model, weights, width, dataset, data_root, download, test_subset)
    runner = _executor(executor, ray_address)
    grid = sweep.log_grid(low, high, points) if over == "noise" else list(sweep.DRIFT_TIMES_S)
    stats = GridStats()
    bar, advance, progress = _grid_progress(quiet, None, f"{over} sweep under {prof.name}")
    with bar:
        report = sweep.run_sweep(
            models,
            prof,
            _loaders(splits),
            over=over,
            grid=grid,
            samples=samples,
            store=_store(results),
            test_set=test_set_id(splits, test_subset),
            chance=1.0 / splits.num_classes,
            on_sample=advance,
            on_progress=progress,
            device=device,
            executor=runner,
            stats=stats,
        )
    report.write(out, dataset=splits.name)
    data = report.to_dict()["models"]
    if over == "noise":
        table = _table("model", "clean acc", "midpoint noise scale")
        for label, entry in data.items():
            mid, clean = entry["midpoint"], entry["clean_accuracy"]
            table.add_row(
                label, "failed" if clean is None else f"{clean:.4f}", "not reached" if mid is None else f"{mid:.4g}"
            )
        _console().print(table)
        _console().print(
            "midpoint: the noise scale where accuracy falls halfway from clean accuracy to chance, "
            "interpolated linearly in log(noise scale) between grid points."
        )
    else:
        table = _table("model", "time (s)" if over == "time" else "layer", "mean acc", "95% CI")
        for label, entry in data.items():
            items = entry["points"] if over == "time" else [{"x": k, **v} for k, v in entry["layers"].items()]
            for p in items:
                table.add_row(label, f"{p['x']}", f"{p['mean']:.4f}", f"[{p['ci_low']:.4f}, {p['ci_high']:.4f}]")
        _console().print(table)
    typer.echo(f"plot and JSON written to {out}/sweep-{over}-{prof.name}*")
    _report_failures(stats)


@app.command("transfer")
def transfer_command(
    model: Annotated[str, typer.Option("--model")] = "lenet5",
    dataset: Dataset = "fashion-mnist",
    train_profile: Annotated[
        list[str] | None,
        typer.Option("--train-profile", help="NIT training profile (repeatable) [default: every profile with noise]."),
    ] = None,
    eval_profile: Annotated[
        list[str] | None, typer.Option("--eval-profile", help="Evaluation profile (repeatable) [default: all].")
    ] = None,
    scale_mode: Annotated[
        str,
        typer.Option(
            "--scale-mode",
            help="published (each profile as written) or matched (scaled so a clean model loses --target-drop).",
        ),
    ] = "published",
    target_drop: Annotated[float, typer.Option("--target-drop", min=0.01, max=0.9)] = 0.1,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 128,
    lr: Annotated[float, typer.Option("--lr")] = 1e-3,
    width: Width = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    samples: Samples = 5,
    train_subset: TrainSubset = None,
    test_subset: TestSubset = None,
    data_root: DataRoot = None,
    download: Download = False,
    weights: Annotated[
        list[Path] | None,
        typer.Option(
            "--weights", help="Also evaluate this state_dict of --model, trained elsewhere, as a row (repeatable)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o")] = OUT / "transfer",
    results: ResultsDb = None,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddress = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """Train clean, QAT and NIT under each training profile; evaluate all under every profile."""
    import hwprofiles
    from hwprofiles.eval.chips import test_set_id
    from hwprofiles.eval.transfer import run_transfer
    from hwprofiles.train import TrainConfig

    evals = _profiles(eval_profile)
    trains = train_profile or [n for n in hwprofiles.list_profiles() if hwprofiles.load_profile(n).noise]
    _profiles(trains)
    splits = _load_data(dataset, data_root, download, train_subset, test_subset, seed)
    base = TrainConfig(
        model=model,
        dataset=dataset,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        width=width,
        seed=seed,
        train_subset=train_subset,
        test_subset=test_subset,
        data_root=data_root,
    )
    from hwprofiles.eval.chips import load_weights
    from hwprofiles.eval.grid import GridStats

    stats = GridStats()
    extra = [load_weights(p, model, splits, width=width) for p in weights or []]
    result = run_transfer(
        base,
        train_profiles=trains,
        eval_profiles=evals,
        out_dir=out,
        splits=splits,
        loaders=_loaders(splits),
        extra_models=extra,
        executor=_executor(executor, ray_address),
        stats=stats,
        samples=samples,
        scale_mode=scale_mode,
        target_drop=target_drop,
        store=_store(results),
        test_set=test_set_id(splits, test_subset),
        progress=not quiet,
        device=device,
        on_event=typer.echo,
    )
    typer.echo(result.to_markdown())
    typer.echo(f"CSV, JSON, Markdown and heatmaps written to {out}")
    _report_failures(stats)


results_app = typer.Typer(help="The results database.", no_args_is_help=True)
app.add_typer(results_app, name="results")


@results_app.command("export")
def results_export(
    fmt: Annotated[str, typer.Option("--format", help="csv, json or parquet (needs pyarrow).")] = "csv",
    table: Annotated[str, typer.Option("--table", help="evals or runs.")] = "evals",
    results: ResultsDb = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write [default: stdout].")] = None,
) -> None:
    """Export every stored run or evaluation, one self-describing row each (keys, hashes, labels, ISO times)."""
    from hwprofiles.io import atomic_write
    from hwprofiles.results import EXPORT_FORMATS, default_db_path, export_rows

    if fmt not in EXPORT_FORMATS:
        raise typer.BadParameter(f"use {', '.join(EXPORT_FORMATS)}", param_hint="--format")
    if fmt == "parquet" and out is None:
        raise typer.BadParameter("Parquet is binary: give a file with --out", param_hint="--out")
    if table not in ("evals", "runs"):
        raise typer.BadParameter("use evals or runs", param_hint="--table")
    path = results or default_db_path()
    if not path.is_file():  # exporting must never create an empty database at a mistyped path
        from hwprofiles.errors import ResultsStoreError

        raise ResultsStoreError(f"{path}: no such results database. Give the file your runs wrote with --results.")
    data = export_rows(_store(path).rows(table), fmt)
    if out is None:
        typer.echo(data, nl=False)
        return
    with atomic_write(out, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    typer.echo(f"written to {out}")


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = OUT / "demo",
    nit_profile: Annotated[str, typer.Option("--nit-profile", help="The profile NIT trains under.")] = "pcm-joshi2020",
    samples: Samples = 3,
    data_root: DataRoot = None,
    download: Download = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="A much smaller run (synthetic data, one small model) to check the set-up.")
    ] = False,
    executor: ExecutorOpt = ExecutorName.local,
    ray_address: RayAddress = None,
    device: Device = "cpu",
    quiet: Quiet = False,
) -> None:
    """The main job: train clean, QAT and NIT, evaluate under every profile, write a report."""
    from hwprofiles.demo import run_demo

    report = run_demo(
        out,
        nit_profile=nit_profile,
        samples=samples,
        data_root=data_root,
        download=download,
        quick=quick,
        device=device,
        progress=not quiet,
        echo=typer.echo,
        executor=_executor(executor, ray_address),
    )
    typer.echo(f"\nreport written to {report}")
