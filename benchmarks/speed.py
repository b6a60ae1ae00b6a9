"""How fast is hwprofiles, against clean PyTorch and against IBM's analog kits? Measured, never asserted.

Six parts, on CPU, Fashion-MNIST-shaped input (batch 256, 1x28x28, 10 classes):

``overhead``
    noisy / clean time of the forward pass (eval, no_grad) and of a training step
    (forward, cross-entropy, backward, Adam) for LeNet-5, ResNet-20, VGG-11 and MobileNetV2
    under the shipped profiles (timing functions of ``benchmarks/overhead.py``: ABBA-interleaved
    repeats after warm-up, median of per-repeat ratios). Targets reported against: <= 1.3x
    for Gaussian output noise, <= 2x for the full PCM pipeline, <= 1.3x for an NIT training
    step (gaussian-additive).
``montecarlo``
    the time of K chip instances (``program(seed=k)`` then one forward each) for K = 1, 4, 16,
    64, against K times the time of one.
``memory``
    peak resident memory added by a forward pass and by two training steps, noisy vs clean,
    each in a fresh process (Linux: the peak RSS is reset through /proc/self/clear_refs).
``lightning``
    hwprofiles against aihwkit-lightning on the same torch (2.13.0, which the kit pins), run in
    ``benchmarks/.venv-lightning``: a matched configuration (8-bit DAC and ADC, output bound 10,
    output noise 0.04, additive weight noise 0.0175 of w_max, 512-row tiles).
``rng``
    nanoseconds per element of the engine's normal draws (numba and torch versions, fused with
    the add, on one thread) against torch's ``normal_`` and one elementwise add pass
    (``benchmarks/rng.py``, 10^7 elements).
``aihwkit``
    hwprofiles' pcm-joshi2020 against aihwkit 1.2.0's InferenceRPUConfig with PCMLikeNoiseModel
    (8-bit DAC/ADC, output noise 0.04, weight noise 0.0175, GlobalDriftCompensation, 512-row
    tiles), programmed once and evaluated 1 h later, run in ``benchmarks/.venv-aihwkit``
    (Python 3.12); with ``--checkpoint`` also the accuracy of the same trained weights under both.

Set up the two comparison environments first (git-ignored):

    benchmarks/setup_aihwkit_envs.sh                  # both; or: lightning | aihwkit
    python benchmarks/speed.py                        # every part; results in docs/results/speed.{json,md}
    python benchmarks/speed.py --parts overhead,montecarlo --repeats 3
    python benchmarks/speed.py --parts aihwkit --checkpoint hwprofiles-out/study-small/checkpoints/lenet5-clean.pt

A part whose environment is missing or fails is recorded as blocked, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402  (the colleague benchmark's timing functions)
import rng as rng_benchmark  # noqa: E402

from hwprofiles.io import write_text  # noqa: E402

RESULTS = ROOT / "docs" / "results"
LIGHTNING_PY = HERE / ".venv-lightning" / "bin" / "python"
AIHWKIT_PY = HERE / ".venv-aihwkit" / "bin" / "python"
PARTS = ("overhead", "montecarlo", "memory", "rng", "lightning", "aihwkit")
TARGET_PROFILES = ("gaussian-additive", "gaussian-multiplicative", "gaussian-combined", "pcm-joshi2020")
LIGHTNING_TARGET = 4.0  # hwprofiles at least 4x faster
RNG_TARGET = 4.0  # the fused draw-and-add at least 4x faster per element than torch's normal_


# -- timing ---------------------------------------------------------------------------
def interleaved(fns: dict[str, Callable[[], None]], repeats: int, warmup: int) -> dict[str, Any]:
    """Time several callables in rotating order (each repeat starts with the next one); medians,
    and for every pair the median of per-repeat ratios (robust to slow changes of the load)."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(repeats):
        for n in names[i % len(names) :] + names[: i % len(names)]:
            times[n].append(overhead.timed(fns[n]))
    out: dict[str, Any] = {
        "median_ms": {n: 1e3 * statistics.median(t) for n, t in times.items()},
        "runs_ms": {n: [round(1e3 * x, 3) for x in t] for n, t in times.items()},
        "ratios": {},
    }
    for a in names:
        for b in names:
            if a != b:
                out["ratios"][f"{a}/{b}"] = statistics.median(x / y for x, y in zip(times[a], times[b]))
    return out


def train_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer
) -> Callable[[], None]:
    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return run


def forward(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    return overhead.forward_fn(model, x)


# -- part 1: overhead against clean PyTorch ------------------------------------------------
def part_overhead(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    ns = argparse.Namespace(batch_size=args.batch_size, repeats=args.repeats, warmup=args.warmup)
    rows = []
    for model_name in args.models:
        profiles = args.profiles or (
            hwprofiles.list_profiles() if model_name in args.all_profile_models else TARGET_PROFILES
        )
        for profile_name in profiles:
            row = overhead.measure(model_name, profile_name, ns)
            rows.append(row)
            log(
                f"overhead {model_name:12s} {profile_name:24s} forward {row['forward']['ratio']:5.2f}x  "
                f"train step {row['train_step']['ratio']:5.2f}x"
            )
    return {"rows": rows}


# -- the noise engine's normal draws ---------------------------------------------------------
def part_rng(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    return rng_benchmark.measure(args.rng_numel, max(args.repeats, 5), max(args.warmup, 1), log)


# -- part 4: Monte Carlo cost ----------------------------------------------------------------
def part_montecarlo(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    x, _ = overhead.batch(args.batch_size)
    rows = []
    for model_name in args.mc_models:
        for profile_name in args.mc_profiles:
            _, noisy = overhead.build_pair(model_name, profile_name)
            noisy.eval()

            def chips(k: int) -> None:
                for seed in range(k):
                    hwprofiles.program(noisy, seed=seed)
                    with torch.no_grad():
                        noisy(x)

            def program_only() -> None:
                hwprofiles.program(noisy, seed=1)

            chips(1)  # warm-up
            one = [overhead.timed(lambda: chips(1)) for _ in range(max(3, args.repeats))]
            prog = [overhead.timed(program_only) for _ in range(max(3, args.repeats))]
            same = [overhead.timed(forward(noisy, x)) for _ in range(max(3, args.repeats))]  # no new chip
            t1 = statistics.median(one)
            row = {
                "model": model_name,
                "profile": profile_name,
                "one_chip_ms": 1e3 * t1,
                "program_ms": 1e3 * statistics.median(prog),
                "forward_same_chip_ms": 1e3 * statistics.median(same),
                "k": [],
            }
            for k in args.ks:
                tk = overhead.timed(lambda: chips(k))
                row["k"].append(
                    {"K": k, "total_ms": 1e3 * tk, "per_chip_ms": 1e3 * tk / k, "vs_K_times_one": tk / (k * t1)}
                )
            rows.append(row)
            log(
                f"monte carlo {model_name:10s} {profile_name:18s} one chip {1e3 * t1:7.1f} ms (program {row['program_ms']:.1f} ms); "
                + ", ".join(f"K={r['K']}: {r['vs_K_times_one']:.2f}x K*one" for r in row["k"])
            )
    return {"rows": rows, "ks": args.ks}


# -- part 5: peak memory -----------------------------------------------------------------------
def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker_memory(args: argparse.Namespace) -> dict[str, Any]:
    """In a fresh process: peak RSS added by one forward (or two training steps) of one model."""
    import gc

    torch.manual_seed(0)
    x, y = overhead.batch(args.batch_size)
    from hwprofiles.models import get_model

    model = get_model(args.model, in_channels=overhead.IN_CHANNELS, num_classes=overhead.NUM_CLASSES)
    if args.profile != "clean":
        model = hwprofiles.to_noisy(model, args.profile, inplace=True, calibration=[x])  # no float copy left behind
        hwprofiles.program(model, seed=0)
    if args.mode == "forward":
        model.eval()
        fn = forward(model, x)
    else:
        model.train()
        fn = train_step(model, x, y, torch.optim.Adam(model.parameters(), lr=1e-3))
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    base = _rss_kb("VmRSS")
    for _ in range(2):
        fn()
    peak = _rss_kb("VmHWM")
    return {"baseline_mb": base / 1024, "peak_mb": peak / 1024, "peak_increase_mb": (peak - base) / 1024}


def part_memory(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    rows = []
    for model_name in args.models:
        for profile_name in ("clean", *args.memory_profiles):
            row: dict[str, Any] = {"model": model_name, "profile": profile_name}
            for mode in ("forward", "train_step"):
                cmd = [
                    sys.executable,
                    __file__,
                    "--worker",
                    "memory",
                    "--model",
                    model_name,
                    "--profile",
                    profile_name,
                    "--mode",
                    mode,
                    "--batch-size",
                    str(args.batch_size),
                ]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    row[mode] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
                else:
                    row[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            f, t = row["forward"], row["train_step"]
            log(
                f"memory {model_name:12s} {profile_name:18s} forward +{f.get('peak_increase_mb', float('nan')):7.1f} MB  "
                f"train +{t.get('peak_increase_mb', float('nan')):7.1f} MB"
            )
    for row in rows:  # noisy / clean ratios
        clean = next(r for r in rows if r["model"] == row["model"] and r["profile"] == "clean")
        for mode in ("forward", "train_step"):
            c, n = clean[mode].get("peak_increase_mb"), row[mode].get("peak_increase_mb")
            if c and n is not None:
                row[mode]["vs_clean"] = n / c
    return {
        "rows": rows,
        "method": "peak RSS increase (VmHWM after reset via /proc/self/clear_refs minus VmRSS "
        "before), fresh process per cell; forward: 2 passes, training: 2 Adam steps",
    }


# -- part 2: aihwkit-lightning -------------------------------------------------------------------
def matched_profile() -> hwprofiles.Profile:
    """pcm-joshi2020's periphery and per-read weight noise, without the PCM device statistics:
    8-bit DAC and ADC, output bound 10, output noise 0.04, weight noise 0.0175, 512-row tiles."""
    pcm = hwprofiles.load_profile("pcm-joshi2020")
    keep = [e for e in pcm.noise if e.kind in ("weight_read_noise", "output_noise")]
    return pcm.model_copy(update={"name": "matched-lightning", "noise": keep})


def worker_lightning(args: argparse.Namespace) -> dict[str, Any]:
    """Inside .venv-lightning: clean / aihwkit-lightning / hwprofiles, same torch, interleaved."""
    import aihwkit_lightning
    from aihwkit_lightning.nn.conversion import convert_to_analog
    from aihwkit_lightning.optim import AnalogOptimizer
    from aihwkit_lightning.simulator.configs import TorchInferenceRPUConfig, WeightNoiseInjectionType

    from hwprofiles.models import get_model

    rpu = TorchInferenceRPUConfig()
    rpu.forward.inp_res = 2**8 - 2  # 8-bit DAC
    rpu.forward.out_res = 2**8 - 2  # 8-bit ADC
    rpu.forward.out_bound = 10.0
    rpu.forward.out_noise = 0.04
    rpu.modifier.noise_type = WeightNoiseInjectionType.ADD_NORMAL
    rpu.modifier.std_dev = 0.0175
    rpu.mapping.max_input_size = 512
    rpu.pre_post.input_range.enable = True  # the kit's DAC needs an input range
    x, y = overhead.batch(args.batch_size)
    out: dict[str, Any] = {
        "versions": {
            "torch": torch.__version__,
            "aihwkit_lightning": aihwkit_lightning.__version__,
            "hwprofiles": hwprofiles.__version__,
        },
        "lightning_config": str(rpu),
        "hwprofiles_profile": matched_profile().model_dump(mode="json"),
        "rows": [],
    }
    for model_name in args.models:
        torch.manual_seed(0)
        clean = get_model(model_name, in_channels=overhead.IN_CHANNELS, num_classes=overhead.NUM_CLASSES)
        lit = convert_to_analog(clean, rpu)  # a deep copy
        hw = hwprofiles.to_noisy(clean, matched_profile())
        hwprofiles.calibrate(hw, [x])
        hwprofiles.program(hw, seed=0)
        for m in (clean, lit, hw):
            m.eval()
        fwd = interleaved(
            {"clean": forward(clean, x), "lightning": forward(lit, x), "hwprofiles": forward(hw, x)},
            args.repeats,
            args.warmup,
        )
        # The kit adds its output and weight noise only in training mode; its eval forward is DAC/ADC only.
        # Its noisy forward, for a like-for-like figure, is train mode under no_grad.
        lit.train()
        noisy_fwd = interleaved({"lightning": forward(lit, x), "hwprofiles": forward(hw, x)}, args.repeats, args.warmup)
        for m in (clean, lit, hw):
            m.train()
        opt_lit = AnalogOptimizer(torch.optim.Adam, lit.analog_layers, lit.parameters(), lr=1e-3)
        train = interleaved(
            {
                "clean": train_step(clean, x, y, torch.optim.Adam(clean.parameters(), lr=1e-3)),
                "lightning": train_step(lit, x, y, opt_lit),
                "hwprofiles": train_step(hw, x, y, torch.optim.Adam(hw.parameters(), lr=1e-3)),
            },
            args.repeats,
            args.warmup,
        )
        out["rows"].append({"model": model_name, "forward_eval": fwd, "forward_noisy": noisy_fwd, "train_step": train})
    return out


def part_lightning(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    return run_worker(LIGHTNING_PY, "lightning", args, log, "benchmarks/setup_aihwkit_envs.sh lightning")


# -- part 3: aihwkit 1.2.0 ---------------------------------------------------------------------------
def worker_aihwkit(args: argparse.Namespace) -> dict[str, Any]:
    """Inside .venv-aihwkit: clean / aihwkit InferenceRPUConfig PCM / hwprofiles pcm-joshi2020."""
    import aihwkit
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.nn.conversion import convert_to_analog
    from aihwkit.optim import AnalogSGD
    from aihwkit.simulator.configs import InferenceRPUConfig
    from aihwkit.simulator.parameters.enums import WeightNoiseType

    from hwprofiles.models import get_model

    def rpu_config() -> Any:
        rpu = InferenceRPUConfig()
        rpu.forward.inp_res = 1 / (2**8 - 2)  # 8-bit DAC
        rpu.forward.out_res = 1 / (2**8 - 2)  # 8-bit ADC
        rpu.forward.out_bound = 10.0
        rpu.forward.out_noise = 0.04
        rpu.forward.w_noise_type = WeightNoiseType.ADDITIVE_CONSTANT
        rpu.forward.w_noise = 0.0175
        rpu.mapping.max_input_size = 512
        rpu.mapping.max_output_size = 512
        # Map each output channel's largest weight to the largest conductance, as hwprofiles'
        # per-channel mapping does. The kit's default (omega 0) keeps raw weight units, where
        # its absolute w_noise and out_noise are several times larger relative to the weights.
        rpu.mapping.weight_scaling_omega = 1.0
        rpu.mapping.weight_scaling_columnwise = True
        rpu.noise_model = PCMLikeNoiseModel(g_max=25.0)
        rpu.drift_compensation = GlobalDriftCompensation()
        return rpu

    x, y = overhead.batch(args.batch_size)
    out: dict[str, Any] = {
        "versions": {"torch": torch.__version__, "aihwkit": aihwkit.__version__, "hwprofiles": hwprofiles.__version__},
        "aihwkit_config": str(rpu_config()),
        "hwprofiles_profile": "pcm-joshi2020",
        "rows": [],
    }
    for model_name in args.models:
        torch.manual_seed(0)
        clean = get_model(model_name, in_channels=overhead.IN_CHANNELS, num_classes=overhead.NUM_CLASSES)
        kit = convert_to_analog(clean, rpu_config())
        hw = hwprofiles.to_noisy(clean, "pcm-joshi2020")
        hwprofiles.calibrate(hw, [x])
        for m in (clean, kit, hw):
            m.eval()
        kit.program_analog_weights()
        kit.drift_analog_weights(3600.0)
        hwprofiles.program(hw, seed=0, t_inference_s=3600.0)
        fwd = interleaved(
            {"clean": forward(clean, x), "aihwkit": forward(kit, x), "hwprofiles": forward(hw, x)},
            args.repeats,
            args.warmup,
        )
        # The kit trains with its forward noise only (DAC/ADC, output and weight noise): the PCM
        # statistics act when it is programmed. pcm-joshi2020 draws a whole chip every step, more
        # work; "hwprofiles-hwa" trains with exactly the kit's training-time noise (equal work).
        hwa = hwprofiles.to_noisy(clean, matched_profile())
        hwprofiles.calibrate(hwa, [x])
        for m in (clean, kit, hw, hwa):
            m.train()
        train = interleaved(
            {
                "clean": train_step(clean, x, y, torch.optim.SGD(clean.parameters(), lr=1e-2)),
                "aihwkit": train_step(kit, x, y, AnalogSGD(kit.parameters(), lr=1e-2)),
                "hwprofiles": train_step(hw, x, y, torch.optim.SGD(hw.parameters(), lr=1e-2)),
                "hwprofiles-hwa": train_step(hwa, x, y, torch.optim.SGD(hwa.parameters(), lr=1e-2)),
            },
            args.repeats,
            args.warmup,
        )
        out["rows"].append({"model": model_name, "forward_eval": fwd, "train_step": train})
    if args.checkpoint:
        out["accuracy"] = aihwkit_accuracy(args, rpu_config, convert_to_analog)
    return out


def aihwkit_accuracy(
    args: argparse.Namespace, rpu_config: Callable[[], Any], convert: Callable[..., Any]
) -> dict[str, Any]:
    """The same trained weights under aihwkit's PCM config and hwprofiles' pcm-joshi2020, K chips each, 1 h."""
    from itertools import islice

    from hwprofiles.data import load_dataset, make_loaders
    from hwprofiles.eval import load_trained, summarize
    from hwprofiles.train.loop import accuracy

    splits = load_dataset("fashion-mnist", test_subset=args.test_subset, seed=0)
    trained = load_trained(args.checkpoint, splits)
    train_loader, test_loader = make_loaders(splits, 256, seed=0, test_batch_size=500)
    kit_acc, hw_acc = [], []
    hw = hwprofiles.to_noisy(trained.model, "pcm-joshi2020")
    hwprofiles.calibrate(hw, [b for b, _ in islice(train_loader, 4)])
    hw.eval()
    for seed in range(args.chips):
        torch.manual_seed(seed)
        kit = convert(trained.model, rpu_config())
        kit.eval()
        kit.program_analog_weights()
        kit.drift_analog_weights(3600.0)
        with torch.no_grad():
            kit_acc.append(accuracy(kit, test_loader))
        hwprofiles.program(hw, seed=seed, t_inference_s=3600.0)
        with torch.no_grad():
            hw_acc.append(accuracy(hw, test_loader))
    with torch.no_grad():
        clean_acc = accuracy(trained.model, test_loader)
    return {
        "checkpoint": str(args.checkpoint),
        "test_images": len(splits.test),
        "chips": args.chips,
        "clean": clean_acc,
        "aihwkit": summarize(kit_acc).as_dict(),
        "hwprofiles": summarize(hw_acc).as_dict(),
    }


def part_aihwkit(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    return run_worker(AIHWKIT_PY, "aihwkit", args, log, "benchmarks/setup_aihwkit_envs.sh aihwkit")


# -- workers in other environments -------------------------------------------------------------
def run_worker(
    python: Path, name: str, args: argparse.Namespace, log: Callable[[str], None], setup: str
) -> dict[str, Any]:
    if not python.exists():
        reason = f"environment {python.parent.parent.relative_to(ROOT)} missing: run {setup}"
        log(f"{name}: blocked: {reason}")
        return {"blocked": reason}
    out_file = Path(f"/tmp/hwprofiles-speed-{name}-{os.getpid()}.json")
    cmd = [
        str(python),
        __file__,
        "--worker",
        name,
        "--out",
        str(out_file),
        "--models",
        ",".join(args.compare_models),
        "--repeats",
        str(args.repeats),
        "--warmup",
        str(args.warmup),
        "--batch-size",
        str(args.batch_size),
    ]
    if args.checkpoint and name == "aihwkit":
        cmd += [
            "--checkpoint",
            str(args.checkpoint),
            "--chips",
            str(args.chips),
            "--test-subset",
            str(args.test_subset),
        ]
    log(f"{name}: running {' '.join(cmd)}")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0 or not out_file.exists():
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        log(f"{name}: blocked: the worker failed:\n{tail}")
        return {"blocked": f"the worker failed: {tail}"}
    result = json.loads(out_file.read_text())
    out_file.unlink()
    for row in result["rows"]:
        f, t = row["forward_eval"]["ratios"], row["train_step"]["ratios"]
        other = "lightning" if name == "lightning" else "aihwkit"
        log(
            f"{name} {row['model']:10s} forward: {other}/clean {f[f'{other}/clean']:.2f}x, hwprofiles/clean "
            f"{f['hwprofiles/clean']:.2f}x, hwprofiles/{other} {f[f'hwprofiles/{other}']:.2f}; train: {other}/clean "
            f"{t[f'{other}/clean']:.2f}x, hwprofiles/clean {t['hwprofiles/clean']:.2f}x, hwprofiles/{other} "
            f"{t[f'hwprofiles/{other}']:.2f}"
        )
    return result


# -- report ----------------------------------------------------------------------------------------
def fx(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}x"


def markdown(result: dict[str, Any]) -> str:
    m, s, parts = result["machine"], result["settings"], result["parts"]
    lines = [
        "# Speed of hwprofiles",
        "",
        "Written by `benchmarks/speed.py` (measured, not asserted). Times are medians of interleaved repeats;",
        "each ratio is the median over repeats of the per-repeat ratio, so slow changes of the machine's load",
        "cancel. CPU, batch "
        f"{s['batch_size']}, 1x28x28 input, 10 classes; {s['repeats']} repeats after {s['warmup']} warm-up runs.",
        f"Machine: {m['platform']}, {m['processor']}, {m['cpu_count']} CPUs ({m['cpus_available']} available), "
        f"{m['torch_threads']} torch threads, GOMP_SPINCOUNT {m.get('gomp_spincount', 'not recorded')}; "
        f"Python {m['python']}, torch {m['torch']}, hwprofiles {m['hwprofiles']}; {m['date']}.",
        "",
    ]
    loads = {k: v["load_average_1min"] for k, v in parts.items() if "load_average_1min" in v}
    if loads:
        lines += [
            "1-minute load average before / after each part (this benchmark's own threads count about 2): "
            + ", ".join(f"{k} {v['before']:.1f} / {v['after']:.1f}" for k, v in loads.items())
            + ".",
            "",
        ]
    if "overhead" in parts:
        note = parts["overhead"].get("note")
        lines += [
            "## 1. Overhead against clean PyTorch",
            "",
            *([f"Note: {note}.", ""] if note else []),
            "| model | profile | forward ratio | train-step ratio | target | met (fwd / train) |",
            "|---|---|--:|--:|---|:-:|",
        ]
        for r in parts["overhead"]["rows"]:
            met = f"{overhead.verdict(r, 'forward')} / {overhead.verdict(r, 'train_step')}" if "target" in r else ""
            lines.append(
                f"| {r['model']} | {r['profile']} | {r['forward']['ratio']:.2f}x | {r['train_step']['ratio']:.2f}x "
                f"| {overhead.target_text(r)} | {met} |"
            )
        lines.append("")
    if "montecarlo" in parts:
        ks = parts["montecarlo"]["ks"]
        lines += [
            "## 4. Monte Carlo cost: K chip instances (program + one forward each)",
            "",
            "`program()` only records the seed; a chip's static noise is drawn on its first forward, so 'one chip'",
            "is program + first forward, and 'forward, same chip' a later forward of the same chip.",
            "",
            "| model | profile | one chip (ms) | program alone (ms) | forward, same chip (ms) | "
            + " | ".join(f"K={k}: time / (K x one)" for k in ks)
            + " |",
            "|---|---|--:|--:|--:|" + "--:|" * len(ks),
        ]
        for r in parts["montecarlo"]["rows"]:
            lines.append(
                f"| {r['model']} | {r['profile']} | {r['one_chip_ms']:.1f} | {r['program_ms']:.1f} | {r['forward_same_chip_ms']:.1f} | "
                + " | ".join(f"{k['vs_K_times_one']:.2f} ({k['total_ms'] / 1e3:.2f} s)" for k in r["k"])
                + " |"
            )
        lines.append("")
    if "memory" in parts:
        lines += [
            "## 5. Peak memory",
            "",
            parts["memory"]["method"] + ".",
            "",
            "| model | variant | forward: peak increase (MB) | vs clean | training: peak increase (MB) | vs clean |",
            "|---|---|--:|--:|--:|--:|",
        ]
        for r in parts["memory"]["rows"]:
            f, t = r["forward"], r["train_step"]
            lines.append(
                f"| {r['model']} | {r['profile']} | {f.get('peak_increase_mb', float('nan')):.1f} | "
                f"{fx(f.get('vs_clean'))} | {t.get('peak_increase_mb', float('nan')):.1f} | {fx(t.get('vs_clean'))} |"
            )
        lines.append("")
    if "rng" in parts:
        r = parts["rng"]
        first = r.get("numba_first_call_s")
        load = r["load_average_1min"]
        load_text = (
            f"{load['before']:.2f} before, {load['after']:.2f} after" if isinstance(load, dict) else f"{load:.2f}"
        )
        lines += [
            "## Normal draws (ns per element)",
            "",
            f"{r['numel']:,} float32 elements, {r['threads']} threads; numba's first call (compile or cache load): "
            + ("numba missing" if first is None else f"{first:.2f} s")
            + f"; 1-minute load average {load_text}.",
            "",
            "| draw | ns / element | time / torch normal_ | target | met |",
            "|---|--:|--:|---|:-:|",
        ]
        for row in r["rows"]:
            targeted = row["name"].startswith("fused add numba")
            target = f"<= {1 / RNG_TARGET:.2f} ({RNG_TARGET:.0f}x faster)" if targeted else ""
            met = ("yes" if row["vs_torch_normal"] <= 1 / RNG_TARGET else "NO") if targeted else ""
            lines.append(
                f"| {row['name']} | {row['ns_per_element']:.2f} | {row['vs_torch_normal']:.2f} | {target} | {met} |"
            )
        lines.append("")
    for name, title, _other in (
        ("lightning", "2. Against aihwkit-lightning (same torch)", "lightning"),
        ("aihwkit", "3. Against aihwkit 1.2.0 (PCM, t = 1 h)", "aihwkit"),
    ):
        if name not in parts:
            continue
        p = parts[name]
        lines += [f"## {title}", ""]
        if "blocked" in p:
            lines += [f"**Blocked**: {p['blocked']}", ""]
            continue
        v = p["versions"]
        lines += [f"Versions: {', '.join(f'{k} {val}' for k, val in v.items())}.", ""]
        if p.get("note"):
            lines += [f"Note: {p['note']}.", ""]
        if name == "lightning":
            lines += [
                f"Target: hwprofiles at least {LIGHTNING_TARGET:g}x faster, i.e. hwprofiles / lightning <= "
                f"{1 / LIGHTNING_TARGET:.2f}. The kit adds output and weight noise only in training mode, so its eval",
                "forward is DAC/ADC only; 'noisy forward' times it in train mode under no_grad against hwprofiles' eval.",
                "",
                "| model | fwd: lightning / clean | fwd: hwprofiles / clean | fwd: hwprofiles / lightning | noisy fwd: hwprofiles / lightning "
                "| train: lightning / clean | train: hwprofiles / clean | train: hwprofiles / lightning | target met (fwd / train) |",
                "|---|--:|--:|--:|--:|--:|--:|--:|:-:|",
            ]
            for r in p["rows"]:
                f, n, t = r["forward_eval"]["ratios"], r["forward_noisy"]["ratios"], r["train_step"]["ratios"]
                met = " / ".join(
                    "yes" if q <= 1 / LIGHTNING_TARGET else "NO"
                    for q in (f["hwprofiles/lightning"], t["hwprofiles/lightning"])
                )
                lines.append(
                    f"| {r['model']} | {f['lightning/clean']:.2f}x | {f['hwprofiles/clean']:.2f}x | "
                    f"{f['hwprofiles/lightning']:.2f} | {n['hwprofiles/lightning']:.2f} | {t['lightning/clean']:.2f}x | "
                    f"{t['hwprofiles/clean']:.2f}x | {t['hwprofiles/lightning']:.2f} | {met} |"
                )
        else:
            lines += [
                "Training: the kit trains with its forward noise only (the PCM statistics act when it is programmed); "
                "`pcm-joshi2020` draws a whole chip every step (more work), `hwa` is hwprofiles with exactly the kit's "
                "training-time noise (DAC/ADC, output noise 0.04, weight noise 0.0175: equal work).",
                "",
                "| model | fwd: aihwkit / clean | fwd: hwprofiles / clean | fwd: hwprofiles / aihwkit "
                "| train: aihwkit / clean | train: hwprofiles pcm-joshi2020 / clean | train: pcm-joshi2020 / aihwkit "
                "| train: hwa / clean | train: hwa / aihwkit |",
                "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
            ]
            for r in p["rows"]:
                f, t = r["forward_eval"]["ratios"], r["train_step"]["ratios"]
                hwa = (
                    f"{t['hwprofiles-hwa/clean']:.2f}x | {t['hwprofiles-hwa/aihwkit']:.2f}"
                    if "hwprofiles-hwa/clean" in t
                    else "n/a | n/a"
                )
                lines.append(
                    f"| {r['model']} | {f['aihwkit/clean']:.2f}x | {f['hwprofiles/clean']:.2f}x | "
                    f"{f['hwprofiles/aihwkit']:.2f} | {t['aihwkit/clean']:.2f}x | {t['hwprofiles/clean']:.2f}x | "
                    f"{t['hwprofiles/aihwkit']:.2f} | {hwa} |"
                )
            if "accuracy" in p:
                a = p["accuracy"]
                lines += [
                    "",
                    f"Accuracy of `{a['checkpoint']}` on {a['test_images']} test images, {a['chips']} chips, "
                    f"1 h after programming: clean {a['clean']:.3f}; aihwkit {a['aihwkit']['mean']:.3f} "
                    f"[{a['aihwkit']['ci_low']:.3f}, {a['aihwkit']['ci_high']:.3f}]; hwprofiles pcm-joshi2020 "
                    f"{a['hwprofiles']['mean']:.3f} [{a['hwprofiles']['ci_low']:.3f}, {a['hwprofiles']['ci_high']:.3f}].",
                ]
        lines.append("")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts (default: all: %(default)s)")
    p.add_argument("--models", default="lenet5,resnet20,vgg11,mobilenetv2", help="models of parts 1 and 5")
    p.add_argument(
        "--profiles",
        default=None,
        help="profiles of part 1 (default: every shipped one for --all-profile-models, the targeted ones otherwise)",
    )
    p.add_argument("--all-profile-models", default="lenet5,resnet20", help="models timed under every profile in part 1")
    p.add_argument("--compare-models", default="lenet5,resnet20", help="models of parts 2 and 3 (default: %(default)s)")
    p.add_argument("--mc-models", default="lenet5,resnet20")
    p.add_argument("--mc-profiles", default="gaussian-additive,pcm-joshi2020")
    p.add_argument("--memory-profiles", default="gaussian-additive,pcm-joshi2020")
    p.add_argument("--ks", default="1,4,16,64", help="chip counts of part 4")
    p.add_argument("--rng-numel", type=int, default=10**7, help="elements per draw of part rng")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    p.add_argument("--checkpoint", type=Path, default=None, help="part 3: also compare accuracy of this checkpoint")
    p.add_argument("--chips", type=int, default=5, help="part 3 accuracy: chip instances per tool")
    p.add_argument("--test-subset", type=int, default=1000, help="part 3 accuracy: test images")
    p.add_argument("--output-dir", type=Path, default=RESULTS)
    p.add_argument(
        "--merge-from",
        type=Path,
        nargs="*",
        default=[],
        help="speed.json files of other runs (parts run in parallel): their parts join this result",
    )
    # internal: run one part inside another environment / a fresh process
    p.add_argument("--worker", choices=("memory", "lightning", "aihwkit"), help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--profile", help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=("forward", "train_step"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("models", "compare_models", "mc_models", "mc_profiles", "memory_profiles", "all_profile_models"):
        setattr(args, name, [v.strip() for v in getattr(args, name).split(",") if v.strip()])
    args.profiles = [v.strip() for v in args.profiles.split(",")] if args.profiles else None
    args.ks = [int(k) for k in args.ks.split(",")]
    args.parts = [v.strip() for v in args.parts.split(",") if v.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.worker == "memory":
        print(json.dumps(worker_memory(args)))
        return 0
    if args.worker in ("lightning", "aihwkit"):
        result = (worker_lightning if args.worker == "lightning" else worker_aihwkit)(args)
        args.out.write_text(json.dumps(result, indent=2))
        return 0

    started = time.time()

    def log(message: str) -> None:
        print(f"[{(time.time() - started) / 60:5.1f} min] {message}", flush=True)

    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        print(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}", file=sys.stderr)
        return 2
    out_json = args.output_dir / "speed.json"
    result: dict[str, Any] = json.loads(out_json.read_text()) if out_json.exists() else {"parts": {}}
    result["benchmark"] = "speed"
    result["machine"] = overhead.machine()
    result["settings"] = {
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "input": [overhead.IN_CHANNELS, overhead.IMAGE_SIZE, overhead.IMAGE_SIZE],
        "device": "cpu",
    }
    functions = {
        "overhead": part_overhead,
        "montecarlo": part_montecarlo,
        "memory": part_memory,
        "rng": part_rng,
        "lightning": part_lightning,
        "aihwkit": part_aihwkit,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for other in args.merge_from:
        result["parts"].update(json.loads(other.read_text())["parts"])
    if args.merge_from:
        args.parts = []
        write_text(out_json, json.dumps(result, indent=2) + "\n")
        write_text(args.output_dir / "speed.md", markdown(result))
    for part in args.parts:
        log(f"part {part}")
        load_before = os.getloadavg()[0]
        result["parts"][part] = functions[part](args, log)
        result["parts"][part]["measured"] = overhead.machine()["date"]
        # The 1-minute load average includes this benchmark's own threads (about 2 on 2 cores).
        result["parts"][part]["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
        write_text(out_json, json.dumps(result, indent=2) + "\n")  # after every part, atomically
        write_text(args.output_dir / "speed.md", markdown(result))
    log(f"wrote {out_json} and {args.output_dir / 'speed.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
