"""Accuracy of a trained model with and without batch-norm recalibration (AdaBS). Measured, never asserted.

A model trained with noise injection keeps, in its batch-norm layers, the statistics of its
training noise. This evaluates a checkpoint under a profile over a range of noise scales,
K chip instances each, as trained and after :func:`hwprofiles.recalibrate_batchnorm` on a few
training batches passed through each chip instance, and writes JSON and Markdown.

    python benchmarks/batchnorm_recalibration.py hwprofiles-out/study-small/checkpoints/resnet20-nit-x3.pt
    python benchmarks/batchnorm_recalibration.py CKPT --profile pcm-joshi2020 --scales 0.5,1,2

The data are the checkpoint's own (data set, training and test subsets, seed).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from itertools import islice
from pathlib import Path
from typing import Any

import hwprofiles
from hwprofiles.data import load_dataset, make_loaders
from hwprofiles.eval import load_trained, summarize
from hwprofiles.io import write_text
from hwprofiles.train import TrainConfig, load_checkpoint
from hwprofiles.train.loop import accuracy

ROOT = Path(__file__).resolve().parents[1]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    config = TrainConfig.from_dict(load_checkpoint(args.checkpoint)["meta"]["config"])
    splits = load_dataset(
        config.dataset,
        root=args.data_root,
        train_subset=config.train_subset,
        test_subset=config.test_subset,
        seed=config.seed,
    )
    train_loader, test_loader = make_loaders(splits, 256, seed=0, test_batch_size=500)
    trained = load_trained(args.checkpoint, splits)
    batches = [x for x, _ in islice(train_loader, args.batches)]
    rows = []
    for scale in args.scales:
        profile = hwprofiles.load_profile(args.profile).with_noise_scale(scale)
        as_trained, recalibrated = [], []
        for seed in range(args.samples):
            noisy = hwprofiles.to_noisy(copy.deepcopy(trained.model), profile)
            hwprofiles.calibrate(noisy, batches)
            hwprofiles.program(noisy, seed=seed)
            noisy.eval()
            as_trained.append(accuracy(noisy, test_loader))
            hwprofiles.recalibrate_batchnorm(noisy, batches)
            recalibrated.append(accuracy(noisy, test_loader))
        a, r = summarize(as_trained), summarize(recalibrated)
        rows.append({"noise_scale": scale, "as_trained": a.as_dict(), "recalibrated": r.as_dict()})
        print(f"{args.profile} x{scale:g}: as trained {a}, after recalibration {r}", flush=True)
    return {
        "checkpoint": str(args.checkpoint),
        "label": trained.label,
        "profile": args.profile,
        "batches": args.batches,
        "batch_size": 256,
        "samples": args.samples,
        "test_images": len(splits.test),
        "rows": rows,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Batch-norm recalibration: `{Path(result['checkpoint']).name}` ({result['label']})",
        "",
        f"Profile `{result['profile']}`, K = {result['samples']} chip instances, {result['test_images']} test "
        f"images; recalibration on {result['batches']} training batches of {result['batch_size']} passed through "
        "each chip instance. Mean accuracy [95% interval].",
        "",
        "| noise scale | as trained | after recalibration |",
        "|--:|--:|--:|",
    ]
    for row in result["rows"]:
        a, r = row["as_trained"], row["recalibrated"]
        lines.append(
            f"| {row['noise_scale']:g} | {a['mean']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] | "
            f"{r['mean']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--profile", default="gaussian-additive")
    p.add_argument("--scales", default="0,1,3,10", help="noise scales (comma-separated; default: %(default)s)")
    p.add_argument("--samples", type=int, default=5, help="chip instances per scale (default: %(default)s)")
    p.add_argument("--batches", type=int, default=4, help="training batches for recalibration (default: %(default)s)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--output-dir", type=Path, default=ROOT / "docs" / "results")
    args = p.parse_args(argv)
    args.scales = [float(s) for s in args.scales.split(",")]
    result = measure(args)
    stem = f"batchnorm-{args.checkpoint.stem}"
    write_text(args.output_dir / f"{stem}.json", json.dumps(result, indent=2) + "\n")
    write_text(args.output_dir / f"{stem}.md", markdown(result))
    print(f"wrote {args.output_dir / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
