"""How much slower is a noisy twin than its float model? Measured, never asserted.

For each model and shipped profile, on CPU and Fashion-MNIST-shaped input
(batch 256, 1x28x28, 10 classes), this measures side by side in one run:

- forward: eval mode, ``torch.no_grad()``, after ``program(seed=0)``;
- training step: forward + cross-entropy + backward + Adam step, train mode.

Clean and noisy repeats are interleaved (ABBA order, so neither always runs
first), after warm-up; the ratio is the median over repeats of noisy / clean
time of the same repeat (the ratio of the median times is kept too). Results go to
``docs/results/overhead.json`` (with the machine) and ``docs/results/overhead.md``.

Targets reported against (see :func:`target`): the Gaussian output-noise profiles'
forward <= 1.6x on ResNet-20 and <= 1.3x on VGG-11, their NIT training step <= 1.5x;
the full PCM pipeline's (pcm-joshi2020) forward <= 2x.

    python benchmarks/overhead.py                       # everything, ~5 min on 2 cores
    python benchmarks/overhead.py --models lenet5 --profiles ideal,pcm-joshi2020 --repeats 3
    python benchmarks/overhead.py --profile pcm-joshi2020   # where the time goes (torch.profiler)
    python benchmarks/overhead.py --ablate pcm-joshi2020    # the periphery and each noise entry alone
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hwprofiles  # before torch, as a user's script would: it tunes torch's OpenMP (hwprofiles.cpu_tuning)

# isort: split
import torch
import torch.nn as nn
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hwprofiles.models import get_model
from hwprofiles.profiles.pieces import pieces

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
IN_CHANNELS, IMAGE_SIZE, NUM_CLASSES = 1, 28, 10
GAUSSIAN_OUTPUT_KINDS = {"gaussian_additive", "gaussian_multiplicative", "gaussian_combined"}


# The goals a run is reported against: forward (eval, one chip) and training step, as the
# largest noisy / clean ratio; per model where the goal names one.
GAUSSIAN_FORWARD = {"resnet20": 1.6, "vgg11": 1.3}
NIT_STEP = 1.5  # the NIT training step under the Gaussian output-noise profiles
PCM_FORWARD = 2.0  # the full PCM pipeline (pcm-joshi2020)


def target(profile: hwprofiles.Profile, model_name: str) -> dict[str, Any] | None:
    """The goals a (profile, model) is reported against: label and the largest forward and
    training-step ratios (None where no goal applies); None without any goal."""
    kinds = {entry.kind for entry in profile.noise}
    if kinds and kinds <= GAUSSIAN_OUTPUT_KINDS and profile.dac is None and profile.adc is None:
        return {"label": "Gaussian output noise", "forward": GAUSSIAN_FORWARD.get(model_name), "train_step": NIT_STEP}
    if profile.name == "pcm-joshi2020":
        return {"label": "full PCM pipeline", "forward": PCM_FORWARD, "train_step": None}
    return None


# -- what is timed ---------------------------------------------------------------------
def forward_fn(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            model(x)

    return run


def train_step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return run


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def side_by_side(clean: Callable[[], None], noisy: Callable[[], None], repeats: int, warmup: int) -> dict[str, Any]:
    """Interleaved timings of two callables (ABBA order) after warm-up; medians and ratios."""
    for _ in range(warmup):
        clean()
        noisy()
    times: dict[str, list[float]] = {"clean": [], "noisy": []}
    for i in range(repeats):
        order = ("clean", "noisy") if i % 2 == 0 else ("noisy", "clean")
        for which in order:
            times[which].append(timed(clean if which == "clean" else noisy))
    clean_s, noisy_s = statistics.median(times["clean"]), statistics.median(times["noisy"])
    # Each repeat's two runs are adjacent, so their ratio cancels slow changes in the
    # machine's load (other processes); its median is the headline figure.
    paired = statistics.median(n / c for c, n in zip(times["clean"], times["noisy"]))
    return {
        "clean_ms": 1e3 * clean_s,
        "noisy_ms": 1e3 * noisy_s,
        "ratio": paired,
        "ratio_of_medians": noisy_s / clean_s,
        "clean_runs_ms": [round(1e3 * t, 3) for t in times["clean"]],
        "noisy_runs_ms": [round(1e3 * t, 3) for t in times["noisy"]],
    }


def build_pair(model_name: str, profile: str | hwprofiles.Profile) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    clean = get_model(model_name, in_channels=IN_CHANNELS, num_classes=NUM_CLASSES)
    # a deep copy: same weights, its own parameters; calibrated DACs take their bounds from one batch
    noisy = hwprofiles.to_noisy(clean, profile, calibration=[batch(32)[0]])
    hwprofiles.program(noisy, seed=0)
    return clean, noisy


def batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE, generator=gen)
    y = torch.randint(0, NUM_CLASSES, (batch_size,), generator=gen)
    return x, y


def measure(model_name: str, profile_name: str, args: argparse.Namespace) -> dict[str, Any]:
    x, y = batch(args.batch_size)
    clean, noisy = build_pair(model_name, profile_name)
    clean.eval()
    noisy.eval()
    forward = side_by_side(forward_fn(clean, x), forward_fn(noisy, x), args.repeats, args.warmup)
    clean.train()
    noisy.train()
    train = side_by_side(train_step_fn(clean, x, y), train_step_fn(noisy, x, y), args.repeats, args.warmup)
    goal = target(hwprofiles.load_profile(profile_name), model_name)
    row: dict[str, Any] = {"model": model_name, "profile": profile_name, "forward": forward, "train_step": train}
    if goal is not None:
        row["target"] = {
            "label": goal["label"],
            "forward_max": goal["forward"],
            "train_step_max": goal["train_step"],
            "forward_met": None if goal["forward"] is None else forward["ratio"] <= goal["forward"],
            "train_step_met": None if goal["train_step"] is None else train["ratio"] <= goal["train_step"],
        }
    return row


# -- reporting -------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_available": affinity,
        "torch_threads": torch.get_num_threads(),
        "gomp_spincount": os.environ.get("GOMP_SPINCOUNT", "libgomp's default"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "hwprofiles": hwprofiles.__version__,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def verdict(row: dict[str, Any], which: str) -> str:
    met = row.get("target", {}).get(f"{which}_met")
    return "–" if met is None else ("yes" if met else "NO")


def target_text(row: dict[str, Any]) -> str:
    goal = row.get("target")
    if goal is None:
        return ""
    parts = [f"forward <= {goal['forward_max']:g}x"] if goal.get("forward_max") else []
    parts += [f"train step <= {goal['train_step_max']:g}x"] if goal.get("train_step_max") else []
    return f"{goal['label']}: {', '.join(parts)}"


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="noisy / clean time (medians over interleaved repeats)")
    for col in (
        "model",
        "profile",
        "fwd clean ms",
        "fwd noisy ms",
        "fwd ratio",
        "train clean ms",
        "train noisy ms",
        "train ratio",
        "target",
        "fwd met",
        "train met",
    ):
        table.add_column(col, justify="left" if col in ("model", "profile") else "right")
    for r in rows:
        f, t = r["forward"], r["train_step"]
        table.add_row(
            r["model"],
            r["profile"],
            f"{f['clean_ms']:.1f}",
            f"{f['noisy_ms']:.1f}",
            f"{f['ratio']:.2f}x",
            f"{t['clean_ms']:.1f}",
            f"{t['noisy_ms']:.1f}",
            f"{t['ratio']:.2f}x",
            target_text(r),
            verdict(r, "forward"),
            verdict(r, "train_step"),
        )
    console.print(table)


def markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        "# Overhead of the noisy twins",
        "",
        "Time of a noisy twin relative to its float model, on CPU, measured side by side in one run by",
        "`benchmarks/overhead.py` (clean and noisy runs interleaved after warm-up; each ratio is the",
        "median over repeats of noisy / clean time within a repeat; times are medians). Measured, not",
        "asserted. Targets: the Gaussian output-noise forward <= 1.6x on ResNet-20 and <= 1.3x on VGG-11,",
        "its NIT training step <= 1.5x on every model, the full PCM pipeline (pcm-joshi2020) forward <= 2x.",
        "",
        f"- Input: batch {s['batch_size']}, {IN_CHANNELS}x{IMAGE_SIZE}x{IMAGE_SIZE} (Fashion-MNIST shape), "
        f"{NUM_CLASSES} classes; {s['repeats']} timed repeats after {s['warmup']} warm-up (each side).",
        "- Forward: eval mode, `torch.no_grad()`, after `program(seed=0)`. Training step: forward,",
        "  cross-entropy, backward and Adam step in train mode (a noisy model draws a new chip every step).",
        f"- Machine: {m['platform']}, {m['processor']}, {m['cpu_count']} CPUs "
        f"({m['cpus_available']} available), {m['torch_threads']} torch threads; Python {m['python']}, "
        f"torch {m['torch']}; {m['date']}.",
        "",
    ]
    if result.get("note"):
        lines += [f"Note: {result['note']}", ""]
    lines += [
        "| model | profile | forward clean (ms) | forward noisy (ms) | forward ratio | train clean (ms) "
        "| train noisy (ms) | train ratio | target | met (fwd / train) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|:-:|",
    ]
    for r in result["results"]:
        f, t = r["forward"], r["train_step"]
        met = f"{verdict(r, 'forward')} / {verdict(r, 'train_step')}" if "target" in r else ""
        lines.append(
            f"| {r['model']} | {r['profile']} | {f['clean_ms']:.1f} | {f['noisy_ms']:.1f} | {f['ratio']:.2f}x "
            f"| {t['clean_ms']:.1f} | {t['noisy_ms']:.1f} | {t['ratio']:.2f}x | {target_text(r)} | {met} |"
        )
    lines.append("")
    return "\n".join(lines)


# -- profiling -------------------------------------------------------------------------
def profile_ops(model_name: str, profile_name: str, args: argparse.Namespace, console: Console) -> None:
    """Print, for the noisy forward and training step, the top torch ops by self CPU time
    and the engine's Python functions (``hwprofiles.nn``/``hwprofiles.noise``) by cumulative time."""
    import cProfile
    import io
    import pstats

    from torch.profiler import ProfilerActivity, profile

    x, y = batch(args.batch_size)
    _, noisy = build_pair(model_name, profile_name)
    for mode in ("forward (eval)", "training step"):
        if mode.startswith("forward"):
            noisy.eval()
            fn = forward_fn(noisy, x)
        else:
            noisy.train()
            fn = train_step_fn(noisy, x, y)
        for _ in range(args.warmup):
            fn()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.repeats):
                fn()
        console.rule(f"{model_name} under {profile_name}: {mode}, {args.repeats} runs: torch ops")
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top)
        console.print(table, soft_wrap=True, markup=False, highlight=False)
        python = cProfile.Profile()
        python.enable()
        for _ in range(args.repeats):
            fn()
        python.disable()
        out = io.StringIO()
        pstats.Stats(python, stream=out).sort_stats("cumulative").print_stats(r"hwprofiles[/\\](nn|noise)", args.top)
        console.rule(f"{model_name} under {profile_name}: {mode}: engine functions by cumulative time")
        console.print(out.getvalue().split("\n\n", 1)[-1], soft_wrap=True, markup=False, highlight=False)


# -- ablation --------------------------------------------------------------------------
def ablate(model_name: str, profile_name: str, args: argparse.Namespace, console: Console) -> None:
    """Time each piece of a profile against the clean model, as the main table does."""
    x, y = batch(args.batch_size)
    table = Table(title=f"{model_name} under pieces of {profile_name} (noisy / clean, paired medians)")
    for col in ("variant", "fwd ratio", "train ratio"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for label, profile in pieces(hwprofiles.load_profile(profile_name)):
        clean, noisy = build_pair(model_name, profile)
        clean.eval()
        noisy.eval()
        forward = side_by_side(forward_fn(clean, x), forward_fn(noisy, x), args.repeats, args.warmup)
        clean.train()
        noisy.train()
        train = side_by_side(train_step_fn(clean, x, y), train_step_fn(noisy, x, y), args.repeats, args.warmup)
        console.print(
            f"{label:40s} forward {forward['ratio']:5.2f}x  train step {train['ratio']:5.2f}x", highlight=False
        )
        table.add_row(label, f"{forward['ratio']:.2f}x", f"{train['ratio']:.2f}x")
    console.print(table)


# -- main ------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="lenet5,resnet20", help="comma-separated zoo models (default: %(default)s)")
    parser.add_argument("--profiles", default="all", help="comma-separated profiles, or 'all' shipped ones (default)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each side (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each side first (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=256, help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    parser.add_argument(
        "--output-dir", type=Path, default=RESULTS, help="where overhead.json/.md go (default: docs/results)"
    )
    parser.add_argument(
        "--note", default="", help="a remark on the run (e.g. the machine's load), saved with the results"
    )
    parser.add_argument(
        "--profile",
        metavar="PROFILE_NAME",
        default=None,
        help="instead of timing, run torch.profiler on the noisy models under this profile and print the top ops",
    )
    parser.add_argument(
        "--ablate",
        metavar="PROFILE_NAME",
        default=None,
        help="instead of the table, time the profile's periphery and each noise entry separately",
    )
    parser.add_argument("--top", type=int, default=20, help="rows of the --profile table (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    console = Console()
    if not console.is_terminal:  # a log file: wide enough for the table
        console = Console(width=150)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    profiles = hwprofiles.list_profiles() if args.profiles == "all" else [p.strip() for p in args.profiles.split(",")]
    for name in profiles:
        hwprofiles.load_profile(name)  # fail before any timing on a misspelled profile
    if args.profile is not None:
        for model_name in models:
            profile_ops(model_name, args.profile, args, console)
        return 0
    if args.ablate is not None:
        for model_name in models:
            ablate(model_name, args.ablate, args, console)
        return 0

    rows: list[dict[str, Any]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("overhead", total=len(models) * len(profiles))
        for model_name in models:
            for profile_name in profiles:
                progress.update(task, description=f"{model_name} / {profile_name}")
                row = measure(model_name, profile_name, args)
                rows.append(row)
                progress.console.print(
                    f"{model_name:10s} {profile_name:24s} forward {row['forward']['ratio']:5.2f}x  "
                    f"train step {row['train_step']['ratio']:5.2f}x",
                    highlight=False,
                )
                progress.advance(task)
    print_table(rows, console)

    result = {
        "benchmark": "overhead",
        "machine": machine(),
        "settings": {
            "models": models,
            "profiles": profiles,
            "repeats": args.repeats,
            "warmup": args.warmup,
            "batch_size": args.batch_size,
            "input": [IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE],
            "num_classes": NUM_CLASSES,
            "device": "cpu",
        },
        "note": args.note,
        "results": rows,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "overhead.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.output_dir / "overhead.md").write_text(markdown(result), encoding="utf-8")
    console.print(f"wrote {args.output_dir / 'overhead.json'} and {args.output_dir / 'overhead.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
