"""How close does a model trained under each profile come to its float accuracy? The figure
each profile's ``validation`` entry puts beside a published chip's.

For every profile (default: every shipped profile with noise), on Fashion-MNIST:

- a float model (clean training, evaluated without noise): the float accuracy;
- a model trained with noise injection under the profile (NIT, the matching method: real
  chips of these kinds run networks trained hardware-aware), evaluated under the same
  profile over K chip instances: the reproduced accuracy;

per training seed, with intervals over seeds (Student t) and the chip interval of each
seed. A profile whose NIT model stays more than ``--max-gap`` (5 points) below float is
flagged: fix the profile (usually its periphery) or mark it ``stress: true``.

    python benchmarks/validate_profiles.py --budget quick       # minutes: ResNet-20 x0.5, 6k images
    python benchmarks/validate_profiles.py --budget medium      # hours: ResNet-20, all 60k images, 3 seeds
    python benchmarks/validate_profiles.py --profile sram-cim-8bit --profile rram-hfox
    python benchmarks/validate_profiles.py --ablate   # also: where each flagged profile's points go
    python benchmarks/validate_profiles.py --recalibrate-bn   # batch norm re-estimated on each chip

``--recalibrate-bn`` re-estimates batch-norm statistics on every chip instance from a few
training batches before it is evaluated, as chips with batch norm are calibrated after
programming (Joshi et al. 2020's AdaBS; NeuRRAM's model-driven chip calibration); the
published figures of those chips were measured so.

``--ablate`` evaluates each flagged profile's NIT models again under the pieces of the profile
(its periphery alone, the periphery with each noise entry, the noise alone;
:func:`hwprofiles.profiles.pieces.pieces`), so a fix can aim at the part that costs the points.

Checkpoints and chip results are kept under ``--work`` (default hwprofiles-out/validation):
an interrupted run resumes where it stopped. Results: ``--out`` (default
docs/results/validation-BUDGET/) gets validation.json and validation.md, and the YAML of
each profile's ``reproduced`` figure is printed to paste into its file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import hwprofiles
from hwprofiles.data import load_dataset
from hwprofiles.eval import evaluate_checkpoint, load_trained
from hwprofiles.eval.summary import summarize
from hwprofiles.eval.trained import evaluation_loaders, test_set_id
from hwprofiles.io import write_text
from hwprofiles.profiles.pieces import pieces
from hwprofiles.results import ResultsStore
from hwprofiles.train import TrainConfig, train


@dataclass(frozen=True)
class Budget:
    width: float
    train_subset: int | None
    test_subset: int | None
    epochs: int
    seeds: int
    chips: int


BUDGETS = {
    "quick": Budget(width=0.5, train_subset=6000, test_subset=1000, epochs=3, seeds=1, chips=3),
    "medium": Budget(width=1.0, train_subset=None, test_subset=None, epochs=8, seeds=3, chips=5),
}


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over seeds, clipped to [0, 1] (the mean alone for one seed)."""
    summary = summarize(values)
    return summary.mean, summary.ci_low, summary.ci_high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", choices=sorted(BUDGETS), default="quick")
    parser.add_argument(
        "--profile", action="append", help="A profile to validate (repeatable) [default: all with noise]"
    )
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="fashion-mnist", help="Fashion-MNIST unless told (tests use synthetic).")
    for field in ("epochs", "seeds", "chips"):
        parser.add_argument(f"--{field}", type=int, default=None, help=f"Override the budget's {field}.")
    parser.add_argument("--width", type=float, default=None, help="Override the budget's width.")
    parser.add_argument("--all-data", action="store_true", help="Use every image (no subsets).")
    parser.add_argument("--data-root", default=None, help="A torchvision root or a folder of IDX files.")
    parser.add_argument("--max-gap", type=float, default=0.05, help="Flag profiles whose NIT model loses more.")
    parser.add_argument("--work", type=Path, default=Path("hwprofiles-out/validation"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--ablate", action="store_true", help="Evaluate each flagged profile's NIT models under its pieces too."
    )
    parser.add_argument(
        "--recalibrate-bn", action="store_true", help="Re-estimate batch norm on each chip before evaluating it."
    )
    args = parser.parse_args(argv)
    budget = BUDGETS[args.budget]
    overrides = {f: getattr(args, f) for f in ("epochs", "seeds", "chips", "width") if getattr(args, f) is not None}
    if args.all_data:
        overrides.update(train_subset=None, test_subset=None)
    budget = dataclasses.replace(budget, **overrides)
    names = args.profile or [n for n in hwprofiles.list_profiles() if hwprofiles.load_profile(n).noise]
    for name in names:
        hwprofiles.load_profile(name)  # unknown names fail before any training
    work = args.work / args.budget
    out = args.out or Path("docs/results") / f"validation-{args.budget}"
    splits = load_dataset(
        args.dataset, root=args.data_root, train_subset=budget.train_subset, test_subset=budget.test_subset
    )
    loaders = evaluation_loaders(splits)
    test_set = test_set_id(splits, budget.test_subset)
    store = ResultsStore(work / "results.sqlite")

    def trained(method: str, profile: str | None, seed: int) -> Any:
        config = TrainConfig(
            model=args.model, dataset=args.dataset, method=method, profile=profile, width=budget.width,
            epochs=budget.epochs, seed=seed, train_subset=budget.train_subset, test_subset=budget.test_subset,
            data_root=args.data_root,
        )  # fmt: skip
        path = work / "checkpoints" / f"{args.model}-{config.label.replace(':', '-')}-s{seed}.pt"
        print(f"training {config.label} seed {seed} -> {path}", flush=True)
        train(config, path, resume=True, data=splits, progress=sys.stderr.isatty())
        return load_trained(path, splits)

    seeds = range(budget.seeds)
    float_acc = [
        evaluate_checkpoint(trained("clean", None, s), "ideal", loaders, samples=1, store=store, test_set=test_set).mean
        for s in seeds
    ]
    ref = mean_interval(float_acc)
    on_chip = {"samples": budget.chips, "store": store, "test_set": test_set, "recalibrate_bn": args.recalibrate_bn}
    rows = []
    for name in names:
        models = [trained("nit", name, s) for s in seeds]  # loaded once: the pieces below reuse them
        per_seed = []
        for s, model in zip(seeds, models):
            result = evaluate_checkpoint(model, name, loaders, **on_chip)
            per_seed.append({"seed": s, "mean": result.mean, "chip_interval": [result.ci_low, result.ci_high]})
        nit = mean_interval([p["mean"] for p in per_seed])
        gap = ref[0] - nit[0]
        rows.append(
            {
                "profile": name,
                "float_accuracy": ref[0],
                "nit_accuracy": nit[0],
                "nit_interval_over_seeds": [nit[1], nit[2]],
                "per_seed": per_seed,
                "gap_points": 100 * gap,
                "within_max_gap": gap <= args.max_gap,
            }
        )
        print(f"{name}: float {ref[0]:.3f}, NIT {nit[0]:.3f} (gap {100 * gap:.1f} points)", flush=True)
        if args.ablate and gap > args.max_gap:
            rows[-1]["pieces"] = []
            for label, piece in pieces(hwprofiles.load_profile(name)):
                accs = [evaluate_checkpoint(model, piece, loaders, **on_chip).mean for model in models]
                acc = statistics.fmean(accs)
                rows[-1]["pieces"].append({"piece": label, "accuracy": acc, "per_seed": accs})
                print(f"  {label}: {acc:.3f} ({100 * (ref[0] - acc):.1f} points below float)", flush=True)

    conditions = (
        f"{budget.epochs} epochs, width {budget.width:g}, "
        f"{budget.train_subset or 60000} training / {budget.test_subset or 10000} test images, "
        f"{budget.chips} chips per model"
        + (", batch norm re-estimated on each chip" if args.recalibrate_bn else "")
        + f" ({args.budget} budget of benchmarks/validate_profiles.py)"
    )
    report = {
        "budget": args.budget,
        "model": args.model,
        "data": args.dataset,
        "conditions": conditions,
        "recalibrate_bn": args.recalibrate_bn,
        "float_accuracy_per_seed": float_acc,
        "max_gap_points": 100 * args.max_gap,
        "profiles": rows,
        "load_average": os.getloadavg(),
    }
    write_text(out / "validation.json", json.dumps(report, indent=2) + "\n")
    lines = [
        f"# Profiles against float: {args.model} on {args.dataset} ({args.budget})\n",
        f"{conditions}; {budget.seeds} training seed(s). NIT: trained and evaluated under the profile.\n",
        f"| profile | float | NIT under the profile | gap (points) | within {100 * args.max_gap:g} points |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        low, high = r["nit_interval_over_seeds"]
        interval = f" [{low:.3f}, {high:.3f}]" if budget.seeds > 1 else ""
        lines.append(
            f"| {r['profile']} | {r['float_accuracy']:.3f} | {r['nit_accuracy']:.3f}{interval} | "
            f"{r['gap_points']:.1f} | {'yes' if r['within_max_gap'] else '**no**: fix or mark stress'} |"
        )
    ablated = [r for r in rows if "pieces" in r]
    if ablated:
        lines += [
            "",
            "## Where the points go",
            "",
            "Each flagged profile's NIT model(s) under pieces of the profile (mean over training seeds).",
            "",
            "| profile | piece | accuracy | points below float |",
            "|---|---|---|---|",
        ]
        for r in ablated:
            for p in r["pieces"]:
                below = 100 * (r["float_accuracy"] - p["accuracy"])
                lines.append(f"| {r['profile']} | {p['piece']} | {p['accuracy']:.3f} | {below:.1f} |")
    write_text(out / "validation.md", "\n".join(lines) + "\n")
    print(f"\nwrote {out / 'validation.json'} and {out / 'validation.md'}\n")
    for r in rows:
        reproduced = {
            "network": args.model.replace("resnet", "ResNet-")
            + (f" (width {budget.width:g})" if budget.width != 1 else ""),
            "data": "Fashion-MNIST" if args.dataset == "fashion-mnist" else args.dataset,
            "method": "nit",
            "conditions": conditions,
            "accuracy": round(r["nit_accuracy"], 4),
            "float_accuracy": round(r["float_accuracy"], 4),
            "training_seeds": budget.seeds,
            "chips": budget.chips,
        }
        print(f"# {r['profile']}\n" + yaml.safe_dump({"reproduced": reproduced}, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
