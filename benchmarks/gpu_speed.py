"""How much slower is a noisy twin than its float model on a GPU? Measured, never asserted.

ResNet-18 at batch 256 on CIFAR-10-shaped input (3x32x32, 10 classes) by default, timed the
way ``benchmarks/overhead.py`` times the CPU (interleaved ABBA repeats after warm-up; the
headline is the median of each repeat's noisy / clean ratio), with the device synchronised
around every timed call:

- forward (eval, ``torch.no_grad()``, one programmed chip) under ``ideal``, every-layer
  Gaussian noise (``gaussian-additive``) and the full PCM pipeline (``pcm-joshi2020``);
- an NIT training step (forward, cross-entropy, backward, Adam) under ``gaussian-additive``.

Targets (GPU): Gaussian forward <= 1.3x, full PCM forward <= 1.5x. Results go to
``--output-dir`` as gpu-speed.json (with the GPU, driver and versions) and gpu-speed.md.

    python benchmarks/gpu_speed.py                              # on cuda
    python benchmarks/gpu_speed.py --device cpu --model lenet5 --image-size 28 --in-channels 1 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # noqa: E402  (the timing helpers of the CPU benchmark)

import hwprofiles  # noqa: E402
from hwprofiles.io import write_text  # noqa: E402

TARGETS = {"gaussian-additive": 1.3, "pcm-joshi2020": 1.5}  # largest noisy / clean forward ratio
PROFILES = ["ideal", "gaussian-additive", "pcm-joshi2020"]


def synced(fn: Callable[[], None], device: torch.device) -> Callable[[], None]:
    """``fn`` that returns only once the device has finished its work (kernels run asynchronously)."""
    if device.type != "cuda":
        return fn

    def run() -> None:
        fn()
        torch.cuda.synchronize(device)

    return run


def build(args: argparse.Namespace, profile: str, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    clean = hwprofiles.get_model(args.model, in_channels=args.in_channels, num_classes=10).to(device)
    calibration = [torch.randn(32, args.in_channels, args.image_size, args.image_size, device=device)]
    noisy = hwprofiles.to_noisy(clean, profile, calibration=calibration)
    hwprofiles.program(noisy, seed=0)
    return clean, noisy


def measure(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch_size, args.in_channels, args.image_size, args.image_size, generator=gen).to(device)
    y = torch.randint(0, 10, (args.batch_size,), generator=gen).to(device)
    rows = []
    for profile in PROFILES:
        clean, noisy = build(args, profile, device)
        clean.eval()
        noisy.eval()
        fwd = overhead.side_by_side(
            synced(overhead.forward_fn(clean, x), device),
            synced(overhead.forward_fn(noisy, x), device),
            args.repeats,
            args.warmup,
        )
        row: dict[str, Any] = {"profile": profile, "forward": fwd}
        if profile == "gaussian-additive":
            clean.train()
            noisy.train()
            row["train_step"] = overhead.side_by_side(
                synced(overhead.train_step_fn(clean, x, y), device),
                synced(overhead.train_step_fn(noisy, x, y), device),
                args.repeats,
                args.warmup,
            )
        if profile in TARGETS:
            row["forward_target"] = TARGETS[profile]
            row["forward_met"] = fwd["ratio"] <= TARGETS[profile]
        rows.append(row)
        print(
            f"{args.model} {profile}: forward {fwd['ratio']:.2f}x"
            + (f", NIT step {row['train_step']['ratio']:.2f}x" if "train_step" in row else ""),
            flush=True,
        )
    return rows


def device_info(device: torch.device) -> dict[str, Any]:
    info = overhead.machine()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def markdown(result: dict[str, Any]) -> str:
    s, m = result["settings"], result["machine"]
    lines = [
        f"# Noisy / clean time on {m.get('gpu', s['device'])}",
        "",
        f"Written by `benchmarks/gpu_speed.py` (measured, not asserted): {s['model']}, batch {s['batch_size']}, "
        f"{s['in_channels']}x{s['image_size']}x{s['image_size']} input, {s['repeats']} interleaved repeats after "
        f"{s['warmup']} warm-up runs; torch {m['torch']}, hwprofiles {m['hwprofiles']}; {m['date']}.",
        "",
        "| profile | forward clean ms | forward noisy ms | forward ratio | target | met | NIT step ratio |",
        "|---|--:|--:|--:|--:|:-:|--:|",
    ]
    for r in result["rows"]:
        f = r["forward"]
        target = f"<= {r['forward_target']:g}x" if "forward_target" in r else ""
        met = ("yes" if r["forward_met"] else "NO") if "forward_met" in r else ""
        step = f"{r['train_step']['ratio']:.2f}x" if "train_step" in r else ""
        lines.append(
            f"| {r['profile']} | {f['clean_ms']:.2f} | {f['noisy_ms']:.2f} | {f['ratio']:.2f}x | {target} | {met} "
            f"| {step} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--model", default="resnet18")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--output-dir", type=Path, default=overhead.RESULTS)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device is visible to torch: run on a machine with a GPU, or pass --device cpu", file=sys.stderr)
        return 2
    settings = {k: getattr(args, k) for k in ("device", "model", "batch_size", "in_channels", "image_size")}
    settings.update(repeats=args.repeats, warmup=args.warmup)
    result = {
        "benchmark": "gpu_speed",
        "settings": settings,
        "machine": device_info(device),
        "rows": measure(args, device),
        "load_average": os.getloadavg(),
    }
    write_text(args.output_dir / "gpu-speed.json", json.dumps(result, indent=2) + "\n")
    write_text(args.output_dir / "gpu-speed.md", markdown(result))
    print(f"wrote {args.output_dir / 'gpu-speed.json'} and {args.output_dir / 'gpu-speed.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
