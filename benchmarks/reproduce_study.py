"""Reproduce the seed study's three claims with hwprofiles. Measured and reported, never asserted.

The study ("On Hardening DNNs against Noisy Computations", Wang, Borras, Klein, Froening,
2025) claims, for additive Gaussian noise after the input and every layer:

1. QAT with constant scaling factors improves robustness over clean training;
2. noise-injection training (NIT) is better still, most of all on deeper nets (a summary
   quotes "inference error reduced by over 40% on ResNet-18");
3. NIT generalises across hardware without exact knowledge of its noise.

For each architecture this trains a clean model, QAT models (8-bit weights, unsigned 8-bit
activations at ReLU outputs with a *constant* step ``act_scale``; the best of a small sweep
is kept) and NIT models under ``gaussian-additive`` at several training noise scales, then
sweeps all of them over the study's grid of sigma with K chip instances each (95% Student-t
intervals). The ``gaussian-additive`` profile's sigma is 0.1 x noise_scale, so the study's
sigma grid 1e-2 .. 1e2 is noise_scale 0.1 .. 1000 here. Claim 3 is the cross-hardware
transfer matrix (:func:`hwprofiles.eval.transfer.run_transfer`) over every shipped profile.

Definitions used in the report:

- midpoint: the sigma at which a model's accuracy falls halfway from its own peak accuracy
  (noise-free, or over the grid: an NIT model with batch norm keeps the statistics of its
  training noise and can do worse with less noise) to chance (1/classes), interpolated in
  log(sigma) (``hwprofiles.eval.sweep.midpoint``);
- relative error reduction of NIT over QAT: (err_QAT - err_NIT) / err_QAT with err = 1 - accuracy,
  both measured (K chips) at sigma_mid = QAT's midpoint; as the study trains at
  sigma_train = sigma_test, one NIT model is trained at sigma_mid itself, and "NIT" is the best
  of all NIT models at that sigma (each one listed);
- best QAT scale: the act_scale with the highest mean accuracy over the sigma grid;
- claim 3 holds when the worst off-diagonal transfer efficiency of an NIT model is >= 0.9.

Budgets (all seeded: training seed 0, chip instances seeds 0..K-1):

    python benchmarks/reproduce_study.py --budget tiny     # smoke test, a few minutes on 2 CPU cores
    python benchmarks/reproduce_study.py --budget small    # <= 60 min on 2 CPU cores (subsampled, narrow nets)
    python benchmarks/reproduce_study.py --budget full --device cuda --dataset cifar10 --data-root DIR  # a GPU

Everything measured goes to a SQLite results store (``hwprofiles-out/study-BUDGET/results.sqlite``)
and checkpoints are reused when finished, so an interrupted run resumes where it stopped.
Figures, JSON and Markdown go to ``docs/results/study-BUDGET/``. ``--archs`` and ``--only``
select parts; the command that regenerates each figure is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import hwprofiles
from hwprofiles.data import load_dataset, make_loaders
from hwprofiles.eval import Summary, evaluate_checkpoint, load_trained
from hwprofiles.eval.chips import Trained, checkpoint_request, test_set_id
from hwprofiles.eval.grid import GridStats, run_requests
from hwprofiles.eval.sweep import log_grid, midpoint
from hwprofiles.executors import EXECUTORS, get_executor
from hwprofiles.io import write_text
from hwprofiles.results import ResultsStore
from hwprofiles.storage import STORAGE_ENV
from hwprofiles.train import TrainConfig, TrainingDivergedError, load_checkpoint, train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PROFILE = "gaussian-additive"
SIGMA_PER_SCALE = 0.1  # gaussian-additive's file sigma: sigma = 0.1 x noise_scale
TRANSFER_THRESHOLD = 0.9
DEEP = ("vgg11", "resnet20", "resnet18", "mobilenetv2")


@dataclass
class Budget:
    """How much of the study a run does."""

    name: str
    dataset: str
    epochs: int
    train_subset: int | None
    test_subset: int | None
    widths: dict[str, float]  # architecture -> width multiplier, in run order
    qat_scales: list[float]
    nit_scales: list[float]  # noise_scale of gaussian-additive (sigma = 0.1 x this)
    grid_points: int  # over noise_scale 0.1 .. 1000 (sigma 1e-2 .. 1e2)
    samples: int  # chip instances per point (K)
    transfer_archs: list[str]
    transfer_epochs: int
    transfer_train_subset: int | None
    transfer_test_subset: int | None
    transfer_samples: int
    batch_size: int = 128
    plan: list[str] = field(default_factory=list)  # run order: arch names and "transfer:ARCH"; default all sweeps first
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


BUDGETS: dict[str, Budget] = {
    "tiny": Budget(
        name="tiny",
        dataset="fashion-mnist",
        epochs=1,
        train_subset=1000,
        test_subset=200,
        widths={"lenet5": 1.0, "resnet20": 0.25},
        qat_scales=[0.5, 4.0],
        nit_scales=[3.0],
        grid_points=5,
        samples=5,
        transfer_archs=["lenet5"],
        transfer_epochs=1,
        transfer_train_subset=500,
        transfer_test_subset=100,
        transfer_samples=5,
        plan=["lenet5", "resnet20", "transfer:lenet5"],
        note="smoke test only (numbers mean nothing): 1 epoch on 1000 training images, 200 test images, "
        "LeNet-5 and ResNet-20 at width 0.25",
    ),
    "small": Budget(
        name="small",
        dataset="fashion-mnist",
        epochs=3,
        train_subset=3000,
        test_subset=300,
        batch_size=64,
        widths={"lenet5": 1.0, "resnet20": 0.5, "vgg11": 0.25, "mobilenetv2": 0.25},
        qat_scales=[0.25, 2.0],
        nit_scales=[3.0, 10.0],
        grid_points=9,
        samples=5,
        transfer_archs=["lenet5", "resnet20"],
        transfer_epochs=3,
        transfer_train_subset=3000,
        transfer_test_subset=300,
        transfer_samples=5,
        plan=["lenet5", "transfer:lenet5", "resnet20", "vgg11", "transfer:resnet20", "mobilenetv2"],
        note=(
            "sized for 2 CPU cores and <= 60 min: 3 epochs (batch 64) on 3000 training images, 300 test images, "
            "narrow nets (ResNet-20 at width 0.5, VGG-11 and MobileNetV2 at width 0.25), 9 sigma points "
            "(half decades); transfer: the same data and epochs"
        ),
    ),
    "full": Budget(
        name="full",
        dataset="fashion-mnist",
        epochs=100,
        train_subset=None,
        test_subset=None,
        widths={"lenet5": 1.0, "vgg11": 1.0, "resnet20": 1.0, "resnet18": 1.0, "mobilenetv2": 1.0},
        qat_scales=[0.5, 1.0, 2.0, 4.0, 8.0],
        nit_scales=[1.0, 3.0, 10.0, 30.0, 100.0],
        grid_points=17,
        samples=10,
        transfer_archs=["lenet5", "resnet20"],
        transfer_epochs=100,
        transfer_train_subset=None,
        transfer_test_subset=None,
        transfer_samples=10,
        note="the study's scale: full data sets, 100 epochs, 17 sigma points (quarter decades), K = 10; meant for a GPU",
    ),
}


# -- helpers ----------------------------------------------------------------------------
def sigma_of(scale: float) -> float:
    return SIGMA_PER_SCALE * scale


def scale_of(sigma: float) -> float:
    return sigma / SIGMA_PER_SCALE


def fmt_sigma(sigma: float | None) -> str:
    return "not reached" if sigma is None else f"{sigma:.3g}"


class Study:
    """One run of the study at one budget: training, sweeps, transfer, report."""

    def __init__(self, args: argparse.Namespace, console: Console) -> None:
        self.args = args
        self.console = console
        self.budget = budget = BUDGETS[args.budget]
        if args.dataset:
            budget.dataset = args.dataset
        if args.epochs:
            budget.epochs = args.epochs
        if args.qat_scales:
            budget.qat_scales = [float(v) for v in args.qat_scales.split(",")]
        if args.nit_scales:
            budget.nit_scales = [float(v) for v in args.nit_scales.split(",")]
        if args.samples:
            budget.samples = args.samples
            budget.transfer_samples = args.samples
        self.work = Path(args.work_dir or ROOT / "hwprofiles-out" / f"study-{budget.name}")
        self.out = Path(args.output_dir or RESULTS / f"study-{budget.name}")
        self.work.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        self.store = ResultsStore(self.work / "results.sqlite")
        self.executor = get_executor(args.executor, address=args.ray_address)
        self.grid_stats = GridStats()
        self.scales = log_grid(0.1, 1000.0, budget.grid_points)
        self.started = time.time()
        self.report_path = self.out / "study.json"
        self.report: dict[str, Any] = json.loads(self.report_path.read_text()) if self.report_path.exists() else {}
        self.report.setdefault("architectures", {})
        self.report.setdefault("transfer", {})
        self.done: dict[str, set[str]] = {"architectures": set(), "transfer": set()}

    # -- logging -------------------------------------------------------------------------
    def log(self, message: str) -> None:
        minutes = (time.time() - self.started) / 60
        self.console.print(f"[{minutes:5.1f} min] {message}", highlight=False)

    # -- data ----------------------------------------------------------------------------
    def data(self, train_subset: int | None, test_subset: int | None) -> tuple[Any, Any, str]:
        splits = load_dataset(
            self.budget.dataset, root=self.args.data_root, train_subset=train_subset, test_subset=test_subset, seed=0
        )
        loaders = make_loaders(splits, self.budget.batch_size, seed=0, test_batch_size=500)
        return splits, loaders, test_set_id(splits, test_subset)

    # -- training ------------------------------------------------------------------------
    def config(self, arch: str, method: str, **kw: Any) -> TrainConfig:
        b = self.budget
        return TrainConfig(
            model=arch,
            dataset=b.dataset,
            method=method,
            epochs=b.epochs,
            batch_size=b.batch_size,
            seed=0,
            width=b.widths[arch],
            train_subset=b.train_subset,
            test_subset=b.test_subset,
            data_root=self.args.data_root,
            **kw,
        )

    def trained(self, config: TrainConfig, splits: Any, name: str) -> Trained | None:
        path = self.work / "checkpoints" / f"{name}.pt"
        finished = False
        if path.exists():
            meta = load_checkpoint(path)["meta"]
            finished = bool(meta.get("finished")) and TrainConfig.from_dict(meta["config"]) == config
        if finished:
            self.log(f"reusing {path.name}")
        else:
            self.log(f"training {name} ({config.epochs} epochs, {len(splits.train)} images)")
            try:
                train(config, path, resume=True, progress=self.args.progress, data=splits, device=self.args.device)
            except TrainingDivergedError as exc:
                self.log(f"[red]{name} diverged[/red]: {exc}")
                return None
        trained = load_trained(path, splits)
        self.store.record_run(str(path), trained.meta, None, True, model_hash=trained.digest)
        return trained

    # -- evaluation ----------------------------------------------------------------------
    def evaluate(self, trained: Trained, loaders: Any, test_set: str, scale: float | None, samples: int) -> Summary:
        if scale is None:
            return evaluate_checkpoint(
                trained, "ideal", loaders, samples=1, store=self.store, test_set=test_set, device=self.args.device
            )
        return evaluate_checkpoint(
            trained,
            PROFILE,
            loaders,
            samples=samples,
            noise_scale=scale,
            store=self.store,
            test_set=test_set,
            device=self.args.device,
        )

    def sweep(self, trained: Trained, loaders: Any, test_set: str, label: str) -> dict[str, Any]:
        b = self.budget
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        # The whole curve and the noise-free point go to the executor as one grid.
        device = self.args.device
        requests = [
            checkpoint_request(
                trained, PROFILE, loaders, samples=b.samples, noise_scale=scale, test_set=test_set, device=device
            )
            for scale in self.scales
        ]
        requests.append(checkpoint_request(trained, "ideal", loaders, samples=1, test_set=test_set, device=device))
        with Progress(*columns, console=self.console, disable=not self.args.progress) as progress:
            task = progress.add_task(f"sweep {label}", total=len(self.scales) * b.samples + 1)
            results = run_requests(
                requests,
                store=self.store,
                executor=self.executor,
                on_sample=lambda: progress.advance(task),
                stats=self.grid_stats,
            )
        if any(r is None for r in results):
            raise RuntimeError(f"sweep {label} failed: {self.grid_stats.failures}")
        curve: list[tuple[float, Summary]] = list(zip(self.scales, results[:-1]))
        clean = results[-1].mean
        chance = 1.0 / 10
        # The reference is the model's peak, not only its noise-free accuracy: an NIT model with
        # batch norm keeps the statistics of its training noise and can do worse with less noise.
        peak = max([clean] + [x.mean for _, x in curve])
        mid_scale = midpoint([s for s, _ in curve], [x.mean for _, x in curve], peak, chance)
        return {
            "label": label,
            "checkpoint": str(trained.path),
            "config": trained.config.to_dict(),
            "noise_free_accuracy": clean,
            "peak_accuracy": peak,
            "curve": [{"noise_scale": s, "sigma": sigma_of(s), **x.as_dict()} for s, x in curve],
            "midpoint_sigma": None if mid_scale is None else sigma_of(mid_scale),
            "mean_accuracy_over_grid": sum(x.mean for _, x in curve) / len(curve),
        }

    # -- one architecture ----------------------------------------------------------------
    def run_arch(self, arch: str) -> None:
        b = self.budget
        splits, loaders, test_set = self.data(b.train_subset, b.test_subset)
        chance = 1.0 / splits.num_classes
        self.log(
            f"[bold]{arch}[/bold] (width {b.widths[arch]}) on {splits.name}: {len(splits.train)} train / "
            f"{len(splits.test)} test images"
        )
        entry: dict[str, Any] = {"width": b.widths[arch], "models": {}}
        started = time.time()
        models: dict[str, Trained] = {}

        def run(label: str, config: TrainConfig, name: str) -> None:
            trained = self.trained(config, splits, name)
            if trained is None:
                entry["models"][label] = {"label": label, "diverged": True, "config": config.to_dict()}
                return
            models[label] = trained
            entry["models"][label] = self.sweep(trained, loaders, test_set, label)
            m = entry["models"][label]
            self.log(
                f"{arch} {label}: noise-free {m['noise_free_accuracy']:.3f}, midpoint sigma "
                f"{fmt_sigma(m['midpoint_sigma'])}, mean over grid {m['mean_accuracy_over_grid']:.3f}"
            )

        run("clean", self.config(arch, "clean"), f"{arch}-clean")
        for s in b.qat_scales:
            run(f"qat a={s:g}", self.config(arch, "qat", bits=8, act_scale=s), f"{arch}-qat-a{s:g}")

        def best(prefix: str) -> str | None:
            found = [k for k, m in entry["models"].items() if k.startswith(prefix) and learned(m)]
            return max(found, key=lambda k: entry["models"][k]["mean_accuracy_over_grid"]) if found else None

        qat = best("qat")
        # The study trains NIT at sigma_train = sigma_test: besides the budget's fixed training
        # sigmas, one NIT model is trained at QAT's midpoint, where claim 2 is measured.
        nit_scales = list(b.nit_scales)
        qat_mid = learned_midpoints(entry).get(qat) if qat else None
        if qat_mid is not None:
            matched = float(f"{scale_of(qat_mid):.2g}")  # 2 significant figures: a stable checkpoint name
            entry["nit_at_qat_midpoint"] = f"nit sigma={sigma_of(matched):g}"
            if matched not in nit_scales:
                nit_scales.append(matched)
        ramp = "ramp" if b.epochs >= 2 else "constant"
        for s in nit_scales:
            run(
                f"nit sigma={sigma_of(s):g}",
                self.config(
                    arch, "nit", profile=PROFILE, noise_scale=s, schedule=ramp, ramp_epochs=max(1, b.epochs // 4)
                ),
                f"{arch}-nit-x{s:g}",
            )

        nit_labels = [k for k in entry["models"] if k.startswith("nit") and k in models]
        nit = best("nit")
        entry["best_qat"], entry["best_nit_over_grid"] = qat, nit
        entry["midpoints"] = {k: m.get("midpoint_sigma") for k, m in entry["models"].items()}

        # Claim 1: QAT vs clean at the clean model's midpoint.
        mids = learned_midpoints(entry)
        clean_mid = mids.get("clean")
        if qat and "clean" in models and clean_mid is not None:
            at = scale_of(clean_mid)
            c, q = (self.evaluate(models[k], loaders, test_set, at, b.samples) for k in ("clean", qat))
            entry["qat_vs_clean"] = {
                "sigma": clean_mid,
                "clean": c.as_dict(),
                "qat": q.as_dict(),
                "relative_error_reduction": reduction(c.mean, q.mean),
            }
        # Claim 2: NIT vs QAT at QAT's midpoint.
        qat_mid = mids.get(qat) if qat else None
        if qat and qat_mid is not None and nit_labels:
            at = scale_of(qat_mid)
            q = self.evaluate(models[qat], loaders, test_set, at, b.samples)
            per = {k: self.evaluate(models[k], loaders, test_set, at, b.samples) for k in nit_labels}
            top = max(per, key=lambda k: per[k].mean)
            entry["nit_vs_qat"] = {
                "sigma": qat_mid,
                "qat": qat,
                "qat_accuracy": q.as_dict(),
                "best_nit": top,
                "nit_accuracy": {k: v.as_dict() for k, v in per.items()},
                "relative_error_reduction": reduction(q.mean, per[top].mean),
                "relative_error_reduction_each": {k: reduction(q.mean, v.mean) for k, v in per.items()},
            }
        entry["figure"] = self.plot(arch, entry, chance)
        entry["regenerate"] = self.command(["--archs", arch, "--only", "sweeps"])
        entry["elapsed_min"] = (time.time() - started) / 60  # this process; cached results take no time
        self.report["architectures"][arch] = entry
        self.done["architectures"].add(arch)
        self.write()
        self.log(f"{arch} done; figure {entry['figure']}; regenerate with: {entry['regenerate']}")

    def plot(self, arch: str, entry: dict[str, Any], chance: float) -> str:
        from hwprofiles.eval.plots import plot_curves

        curves, mids = {}, {}
        good = learned_midpoints(entry)
        for label, m in entry["models"].items():
            if m.get("diverged") or (label.startswith("qat") and label != entry["best_qat"]):
                continue
            name = (
                f"QAT 8-bit ({label[4:]}, best)"
                if label.startswith("qat")
                else ("clean" if label == "clean" else f"NIT ({label[4:]})")
            )
            curves[name] = [
                (p["sigma"], Summary(p["mean"], p["std"], p["ci_low"], p["ci_high"], p["n"])) for p in m["curve"]
            ]
            mids[name] = good.get(label)  # no line for a model that did not learn
        path = self.out / f"{arch}.png"
        b = self.budget
        plot_curves(
            curves,
            path,
            xlabel="sigma of additive Gaussian noise (= 0.1 x noise_scale of gaussian-additive)",
            title=f"{arch} x{b.widths[arch]:g}, {b.dataset}, budget {b.name}: accuracy vs sigma (K={b.samples})",
            chance=chance,
            midpoints=mids,
        )
        return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)

    # -- claim 3 -------------------------------------------------------------------------
    def transfer_profiles(self) -> list[str]:
        """The shipped library (``profiles/``), not profiles that installed plugins or users add."""
        if self.args.transfer_profiles:
            return [p.strip() for p in self.args.transfer_profiles.split(",") if p.strip()]
        shipped = {p.stem for p in (ROOT / "profiles").glob("*.yaml")}
        return [p for p in hwprofiles.list_profiles() if p in shipped]

    def run_transfer(self, arch: str) -> None:
        from hwprofiles.eval.transfer import run_transfer

        b = self.budget
        started = time.time()
        splits, loaders, test_set = self.data(b.transfer_train_subset, b.transfer_test_subset)
        profiles = self.transfer_profiles()
        train_profiles = [p for p in profiles if hwprofiles.load_profile(p).noise]
        base = TrainConfig(
            model=arch,
            dataset=b.dataset,
            epochs=b.transfer_epochs,
            batch_size=b.batch_size,
            seed=0,
            width=b.widths[arch],
            train_subset=b.transfer_train_subset,
            test_subset=b.transfer_test_subset,
            data_root=self.args.data_root,
        )
        self.log(
            f"[bold]transfer {arch}[/bold]: {len(train_profiles) + 2} training runs x {len(profiles)} profiles "
            f"x {b.transfer_samples} chips"
        )
        result = run_transfer(
            base,
            train_profiles=train_profiles,
            eval_profiles=profiles,
            out_dir=self.work / f"transfer-{arch}",
            splits=splits,
            loaders=loaders,
            samples=b.transfer_samples,
            scale_mode=self.args.transfer_scales,
            store=self.store,
            test_set=test_set,
            progress=self.args.progress,
            device=self.args.device,
            on_event=self.log,
            executor=self.executor,
            storage=self.args.storage,
            stats=self.grid_stats,
        )
        paths = result.write(self.out, stem=f"transfer-{arch}")
        worst = result.worst_off_diagonal()
        self.report["transfer"][arch] = {
            "width": b.widths[arch],
            "rows": result.rows,
            "cols": result.cols,
            "noise_scales": result.scales,
            "scale_mode": result.scale_mode,
            "accuracy": {f"{r} | {c}": s.as_dict() for (r, c), s in result.cells.items()},
            "transfer_efficiency": result.efficiency(),
            "worst_off_diagonal": None
            if worst is None
            else {"efficiency": worst[0], "trained": worst[1], "evaluated": worst[2]},
            "files": {
                k: str(Path(v).relative_to(ROOT)) if Path(v).is_relative_to(ROOT) else str(v) for k, v in paths.items()
            },
            "regenerate": self.command(["--archs", arch, "--only", "transfer"]),
            "elapsed_min": (time.time() - started) / 60,
        }
        self.done["transfer"].add(arch)
        self.write()
        w = "undefined" if worst is None else f"{worst[0]:.3f} ({worst[1]} under {worst[2]})"
        self.log(
            f"transfer {arch}: worst off-diagonal efficiency {w}; regenerate with: "
            f"{self.report['transfer'][arch]['regenerate']}"
        )

    # -- report --------------------------------------------------------------------------
    def command(self, extra: list[str]) -> str:
        parts = ["python", "benchmarks/reproduce_study.py", "--budget", self.budget.name]
        for flag, value in (
            ("--dataset", self.args.dataset),
            ("--data-root", self.args.data_root),
            ("--epochs", self.args.epochs),
            ("--samples", self.args.samples),
            ("--qat-scales", self.args.qat_scales),
            ("--nit-scales", self.args.nit_scales),
        ):
            if value:
                parts += [flag, str(value)]
        if self.args.device != "cpu":
            parts += ["--device", self.args.device]
        return shlex.join(parts + extra)

    def write(self) -> None:
        """Write study.json/.md, merged with what other processes of the same budget wrote meanwhile
        (architectures can run in parallel processes: ``--archs lenet5`` and ``--archs vgg11``)."""
        b = self.budget
        if self.report_path.exists():
            on_disk = json.loads(self.report_path.read_text())
            for key in ("architectures", "transfer"):
                merged = dict(on_disk.get(key, {}))
                merged.update({k: v for k, v in self.report[key].items() if k in self.done[key]})
                merged.update({k: v for k, v in self.report[key].items() if k not in merged})
                self.report[key] = merged
        self.report["budget"] = asdict(b)
        self.report["settings"] = {
            "profile": PROFILE,
            "sigma_per_noise_scale": SIGMA_PER_SCALE,
            "noise_scales": self.scales,
            "sigmas": [sigma_of(s) for s in self.scales],
            "transfer_scale_mode": self.args.transfer_scales,
            "transfer_threshold": TRANSFER_THRESHOLD,
            "device": self.args.device,
        }
        self.report["machine"] = machine()
        self.report["claims"] = claims(self.report)
        write_text(self.report_path, json.dumps(self.report, indent=2) + "\n")  # atomic: parallel processes
        write_text(self.out / "study.md", markdown(self.report))


def reduction(err_base_acc: float, new_acc: float) -> float | None:
    base = 1.0 - err_base_acc
    return None if base <= 0 else (base - (1.0 - new_acc)) / base


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "hwprofiles": hwprofiles.__version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


LEARNED = 0.2  # a model whose peak accuracy is below this (2x chance) did not learn; no midpoint


def peak_accuracy(model: dict[str, Any]) -> float:
    return model.get("peak_accuracy", model.get("noise_free_accuracy", 0.0))


def learned(model: dict[str, Any]) -> bool:
    return not model.get("diverged") and peak_accuracy(model) >= LEARNED


def learned_midpoints(entry: dict[str, Any]) -> dict[str, float | None]:
    """Midpoints of the models that learned; a model near chance has no meaningful midpoint."""
    return {k: m.get("midpoint_sigma") for k, m in entry["models"].items() if learned(m)}


def claims(report: dict[str, Any]) -> dict[str, Any]:
    """Which of the study's claims held in this run, with the numbers behind each verdict."""
    archs = report["architectures"]
    out: dict[str, Any] = {}
    one = {}
    for arch, e in archs.items():
        mids = learned_midpoints(e)
        c, q = mids.get("clean"), mids.get(e.get("best_qat")) if e.get("best_qat") else None
        comp = e.get("qat_vs_clean", {})
        one[arch] = {
            "clean_midpoint": c,
            "qat_midpoint": q,
            "held": None if c is None or q is None else q > c,
            "error_reduction_at_clean_midpoint": comp.get("relative_error_reduction"),
            "cis_disjoint": separated(comp.get("clean"), comp.get("qat")),
        }
    out["1_qat_beats_clean"] = one
    two = {}
    for arch, e in archs.items():
        mids = learned_midpoints(e)
        q = mids.get(e.get("best_qat")) if e.get("best_qat") else None
        nits = [v for k, v in mids.items() if k.startswith("nit")]
        n = None if not nits else (None if any(v is None for v in nits) else max(nits))
        comp = e.get("nit_vs_qat", {})
        r = comp.get("relative_error_reduction")
        two[arch] = {
            "did_not_learn": [k for k, m in e["models"].items() if not learned(m)],
            "qat_midpoint": q,
            "best_nit_midpoint": n,
            "nit_never_reaches_midpoint": bool(nits) and any(v is None for v in nits),
            "error_reduction_at_qat_midpoint": r,
            "deep": arch in DEEP,
            "cis_disjoint": separated(comp.get("qat_accuracy"), comp.get("nit_accuracy", {}).get(comp.get("best_nit"))),
            "held": None if r is None else r > 0,
        }
    deep = [
        v["error_reduction_at_qat_midpoint"]
        for a, v in two.items()
        if v["deep"] and v["error_reduction_at_qat_midpoint"] is not None
    ]
    shallow = [
        v["error_reduction_at_qat_midpoint"]
        for a, v in two.items()
        if not v["deep"] and v["error_reduction_at_qat_midpoint"] is not None
    ]
    out["2_nit_beats_qat"] = {
        "per_architecture": two,
        "largest_on_deep_nets": None if not deep or not shallow else min(deep) > max(shallow),
        "over_40_percent_on_deep": None
        if not deep
        else {
            a: v["error_reduction_at_qat_midpoint"] > 0.4
            for a, v in two.items()
            if v["deep"] and v["error_reduction_at_qat_midpoint"] is not None
        },
    }
    three = {}
    for arch, t in report.get("transfer", {}).items():
        w = t.get("worst_off_diagonal")
        three[arch] = {"worst_off_diagonal": w, "held": None if w is None else w["efficiency"] >= TRANSFER_THRESHOLD}
    out["3_nit_transfers"] = three
    return out


def separated(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool | None:
    """Whether two 95% intervals (Summary.as_dict) are disjoint."""
    if not a or not b:
        return None
    return a["ci_high"] < b["ci_low"] or b["ci_high"] < a["ci_low"]


def verdict(v: dict[str, Any]) -> str:
    """held / did NOT hold, and 'not shown' where the better mean lies within the intervals' noise."""
    if v["held"] and v.get("cis_disjoint") is False:
        return "not shown (better mean, but within the 95% CIs)"
    return yes_no(v["held"])


def yes_no(value: bool | None) -> str:
    return "n/a" if value is None else ("held" if value else "did NOT hold")


def ci_note(disjoint: bool | None) -> str:
    return "" if disjoint is None else (" (95% CIs disjoint)" if disjoint else " (95% CIs overlap: within noise)")


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def markdown(report: dict[str, Any]) -> str:
    b, s, m = report["budget"], report["settings"], report["machine"]
    cl = report["claims"]
    lines = [
        f"# Seed study reproduced: budget `{b['name']}`",
        "",
        f"Written by `benchmarks/reproduce_study.py --budget {b['name']}`. {b['note']}.",
        "",
        f"- Data: {b['dataset']}, training subset {b['train_subset'] or 'all'}, test subset {b['test_subset'] or 'all'}, "
        f"{b['epochs']} epoch(s), Adam, batch {b['batch_size']}, seed 0.",
        f"- Noise: profile `{s['profile']}` (additive Gaussian after the input and every layer); "
        f"sigma = {s['sigma_per_noise_scale']} x noise_scale, so the grid sigma = "
        f"{s['sigmas'][0]:.3g} .. {s['sigmas'][-1]:.3g} ({len(s['sigmas'])} points) is noise_scale "
        f"{s['noise_scales'][0]:.3g} .. {s['noise_scales'][-1]:.3g}.",
        f"- K = {b['samples']} chip instances per point (seeds 0..K-1), mean and 95% Student-t interval.",
        f"- QAT: 8-bit, constant activation step, act_scale in {b['qat_scales']} (best by mean accuracy over the grid). "
        f"NIT: training sigma in [{', '.join(f'{sigma_of(x):g}' for x in b['nit_scales'])}] "
        f"(noise_scale {', '.join(f'{x:g}' for x in b['nit_scales'])}) and, as the study trains at sigma_train = sigma_test, "
        "at the best QAT model's midpoint; noise ramped linearly from 0 over the first max(1, epochs // 4) epoch(s) "
        "when training 2 or more epochs.",
        "- Midpoint: sigma where accuracy falls halfway from the model's peak accuracy (noise-free or over the grid) "
        f"to chance; none for a model that did not learn (peak accuracy < {LEARNED}). An NIT model with batch norm "
        "keeps the normalisation statistics of its training noise and may do worse with less noise, hence the peak.",
        f"- Machine: {m['platform']}, {m['cpu_count']} CPUs ({m['cpus_available']} available), torch {m['torch']}, "
        f"{m['date']}.",
        "",
        "## Per architecture",
        "",
        "| arch | width | clean acc | midpoint sigma: clean | QAT (best) | NIT (each training sigma) | "
        "QAT vs clean: error reduction at clean midpoint | NIT vs QAT: error reduction at QAT midpoint |",
        "|---|--:|--:|--:|--:|---|--:|--:|",
    ]
    for arch, e in report["architectures"].items():
        mids = e.get("midpoints", {})
        good = learned_midpoints(e)
        nits = ", ".join(
            f"{k[4:]}{' (at QAT midpoint)' if k == e.get('nit_at_qat_midpoint') else ''}: "
            f"{fmt_sigma(v) if k in good else 'did not learn (peak ' + format(peak_accuracy(e['models'][k]), '.2f') + ')'}"
            f" [noise-free {e['models'][k].get('noise_free_accuracy', 0):.2f}]"
            for k, v in mids.items()
            if k.startswith("nit")
        )
        q = e.get("best_qat")
        qc, nq = e.get("qat_vs_clean", {}), e.get("nit_vs_qat", {})
        nq_text = "n/a"
        if nq:
            nq_text = (
                f"{pct(nq['relative_error_reduction'])} at sigma {nq['sigma']:.3g} "
                f"(QAT {nq['qat_accuracy']['mean']:.3f}, {nq['best_nit']} {nq['nit_accuracy'][nq['best_nit']]['mean']:.3f})"
            )
        qc_text = (
            "n/a"
            if not qc
            else (
                f"{pct(qc['relative_error_reduction'])} at sigma {qc['sigma']:.3g} "
                f"(clean {qc['clean']['mean']:.3f}, QAT {qc['qat']['mean']:.3f})"
            )
        )
        clean_acc = e["models"].get("clean", {}).get("noise_free_accuracy")
        lines.append(
            f"| {arch} | {e['width']:g} | {'n/a' if clean_acc is None else f'{clean_acc:.3f}'} | {fmt_sigma(mids.get('clean'))} | "
            f"{fmt_sigma(mids.get(q)) if q else 'n/a'} ({q}) | {nits} | {qc_text} | {nq_text} |"
        )
    missing = [a for a in b["widths"] if a not in report["architectures"]]
    missing += [f"transfer {a}" for a in b["transfer_archs"] if a not in report.get("transfer", {})]
    if missing:
        lines += ["", f"**Not finished in this run** (no results above or below): {', '.join(missing)}."]
    lines += ["", "Figures (accuracy vs sigma, 95% CI bands, dotted lines at the midpoints):", ""]
    for arch, e in report["architectures"].items():
        lines.append(f"- `{arch}`: ![{arch}]({Path(e['figure']).name}) — regenerate: `{e['regenerate']}`")
    lines += ["", "## The claims", ""]
    for arch, v in cl["1_qat_beats_clean"].items():
        lines.append(
            f"- Claim 1 (QAT beats clean), {arch}: **{verdict(v)}** — midpoint sigma clean "
            f"{fmt_sigma(v['clean_midpoint'])}, QAT {fmt_sigma(v['qat_midpoint'])}; error reduction at the clean "
            f"midpoint {pct(v['error_reduction_at_clean_midpoint'])}{ci_note(v['cis_disjoint'])}."
        )
    two = cl["2_nit_beats_qat"]
    for arch, v in two["per_architecture"].items():
        nit_mid = (
            "beyond the grid for some training sigma"
            if v["nit_never_reaches_midpoint"]
            else fmt_sigma(v["best_nit_midpoint"])
        )
        failed = (
            f" Did not learn (peak accuracy < {LEARNED}): {', '.join(v['did_not_learn'])}."
            if v["did_not_learn"]
            else ""
        )
        lines.append(
            f"- Claim 2 (NIT beats QAT), {arch}: **{verdict(v)}** — error reduction at QAT's midpoint "
            f"{pct(v['error_reduction_at_qat_midpoint'])}{ci_note(v['cis_disjoint'])}; midpoint sigma QAT {fmt_sigma(v['qat_midpoint'])}, "
            f"best NIT {nit_mid}.{failed}"
        )
    lines.append(
        f"- Claim 2, largest on deeper nets (every deep net's reduction above every shallow one's): "
        f"**{yes_no(two['largest_on_deep_nets'])}**; over 40% on each deep net: "
        f"{two['over_40_percent_on_deep'] if two['over_40_percent_on_deep'] is not None else 'n/a'}."
    )
    for arch, v in cl["3_nit_transfers"].items():
        w = v["worst_off_diagonal"]
        wt = "undefined" if w is None else f"{w['efficiency']:.3f} ({w['trained']} evaluated under {w['evaluated']})"
        lines.append(
            f"- Claim 3 (NIT transfers; worst off-diagonal efficiency >= {s['transfer_threshold']}), {arch}: "
            f"**{yes_no(v['held'])}** — worst off-diagonal transfer efficiency {wt}."
        )
    if report.get("transfer"):
        lines += ["", "## Transfer matrices", ""]
        for arch, t in report["transfer"].items():
            lines += [
                f"### {arch} (width {t['width']:g}, scales: {t['scale_mode']})",
                "",
                f"Files: {', '.join('`' + Path(p).name + '`' for p in t['files'].values())}; "
                f"regenerate: `{t['regenerate']}`",
                "",
            ]
            md_path = ROOT / t["files"]["md"] if not Path(t["files"]["md"]).is_absolute() else Path(t["files"]["md"])
            if md_path.exists():
                lines += [md_path.read_text(encoding="utf-8").replace("### ", "#### "), ""]
    lines.append("")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--budget", choices=sorted(BUDGETS), default="small", help="how much to run (default: %(default)s)"
    )
    parser.add_argument("--archs", default=None, help="comma-separated subset of the budget's architectures")
    parser.add_argument(
        "--only",
        choices=("all", "sweeps", "transfer", "report"),
        default="all",
        help="which part (default: all); report: only rewrite study.md/json from what was measured",
    )
    parser.add_argument("--dataset", default=None, help="override the budget's dataset (e.g. cifar10)")
    parser.add_argument("--data-root", default=None, help="a torchvision dataset root")
    parser.add_argument("--epochs", type=int, default=None, help="override the budget's epochs")
    parser.add_argument("--samples", type=int, default=None, help="override K, the chip instances per point")
    parser.add_argument(
        "--qat-scales", default=None, help="override the budget's QAT act_scale sweep (comma-separated)"
    )
    parser.add_argument(
        "--nit-scales",
        default=None,
        help="override the budget's NIT training noise scales (comma-separated; sigma = 0.1 x scale)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where sweeps and transfer cells run: local, or ray (tasks on a Ray cluster)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join (auto, HOST:PORT; also $HWPROFILES_RAY_ADDRESS); none starts Ray here",
    )
    parser.add_argument(
        "--storage",
        default=os.environ.get(STORAGE_ENV),
        help="keep the transfer runs' checkpoints also here, a local path or fsspec URL (s3://bucket/run1 needs s3fs;"
        " also $HWPROFILES_STORAGE): training tasks leave them there, and a re-run fetches finished ones",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    parser.add_argument(
        "--transfer-scales",
        choices=("published", "matched"),
        default="published",
        help="noise scale of each profile in the transfer matrix (default: the profile files')",
    )
    parser.add_argument(
        "--transfer-profiles",
        default=None,
        help="comma-separated profiles of the transfer matrix (default: every shipped one, in profiles/)",
    )
    parser.add_argument(
        "--work-dir", default=None, help="checkpoints and results.sqlite (default: hwprofiles-out/study-BUDGET)"
    )
    parser.add_argument(
        "--output-dir", default=None, help="figures, JSON, Markdown (default: docs/results/study-BUDGET)"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bars (log lines only)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    console = Console() if sys.stdout.isatty() else Console(width=150)
    study = Study(args, console)
    b = study.budget
    archs = list(b.widths) if not args.archs else [a.strip() for a in args.archs.split(",")]
    unknown = [a for a in archs if a not in b.widths]
    if unknown:
        console.print(
            f"unknown architecture(s) for budget {b.name}: {', '.join(unknown)}; choose from {', '.join(b.widths)}"
        )
        return 2
    study.log(f"budget {b.name}: {b.note}")
    study.log(
        f"sigma grid {', '.join(f'{sigma_of(x):.3g}' for x in study.scales)} "
        f"(= noise_scale {study.scales[0]:.3g} .. {study.scales[-1]:.3g} of {PROFILE})"
    )
    if args.only == "report":
        for arch, entry in study.report["architectures"].items():
            entry["figure"] = study.plot(arch, entry, 1.0 / 10)
        study.write()
        study.log(f"wrote {study.out / 'study.json'} and {study.out / 'study.md'}")
        return 0
    plan = b.plan or [*b.widths, *(f"transfer:{a}" for a in b.transfer_archs)]
    for step in plan:
        kind, _, arch = step.rpartition(":")
        if arch not in archs:
            continue
        if kind == "transfer" and args.only in ("all", "transfer"):
            study.run_transfer(arch)
        elif not kind and args.only in ("all", "sweeps"):
            study.run_arch(arch)
    study.write()
    study.log(f"wrote {study.out / 'study.json'} and {study.out / 'study.md'}")
    study.log(f"{args.executor} executor: {study.grid_stats.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
