"""Conductance drift over a year: accuracy of a PCM chip from 1 second to 1 year after programming.

What it shows: a LeNet-5 trained with noise injection under ``pcm-joshi2020``
(``hwprofiles.train``) is evaluated over K chips at growing times since programming
(``t_inference_s``), with the profile's global drift compensation and with a copy of the
profile that has it switched off (a profile is data: dump it, change a field, parse it).
PCM conductances decay as (t/t0)^-nu with nu spread over devices; compensation rescales
each layer's outputs by one gain measured at time t, which undoes the mean decay but not
the spread, so accuracy still falls slowly. The command line draws the same curve:
``hwprofiles sweep CHECKPOINT --over time --profile pcm-joshi2020``.

Run it on Fashion-MNIST (--data-root, or the Debian package dataset-fashion-mnist at
/usr/share/datasets/fashion-mnist)::

    python examples/05_drift_over_a_year.py --epochs 3 --samples 10 --out runs/drift

In seconds, on tiny synthetic data (what the tests run)::

    python examples/05_drift_over_a_year.py --tiny --out /tmp/drift

It prints one line per time and writes OUT/results.json and OUT/drift.png.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml

import hwprofiles
from hwprofiles.data import make_loaders
from hwprofiles.eval.trained import load_trained
from hwprofiles.train import TrainConfig, train

PROFILE = "pcm-joshi2020"
TIMES_S = {"1 s": 1.0, "1 h": 3600.0, "1 day": 86_400.0, "1 month": 2_592_000.0, "1 year": 31_536_000.0}


def without_compensation(name: str) -> hwprofiles.Profile:
    """The profile ``name`` with its drift compensation switched off."""
    data = yaml.safe_load(hwprofiles.dump_profile(hwprofiles.load_profile(name)))
    for entry in data["noise"]:
        if entry["kind"] == "pcm_drift":
            entry["compensation"] = False
    data["name"] = f"{name}-uncompensated"
    return hwprofiles.parse_profile(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", default=bool(os.environ.get("HWPROFILES_EXAMPLES_TINY")))
    parser.add_argument("--data-root", help="Folder of the Fashion-MNIST IDX files (default: searched).")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10, help="Chip instances per time.")
    parser.add_argument("--out", type=Path, default=Path("examples-out/05"))
    args = parser.parse_args()

    dataset = "synthetic" if args.tiny else "fashion-mnist"
    if args.tiny:
        args.epochs, args.samples = 1, 2
    config = TrainConfig(
        model="lenet5",
        dataset=dataset,
        data_root=args.data_root,
        epochs=args.epochs,
        lr=5e-3 if args.tiny else 1e-3,  # one short epoch has to learn something
        method="nit",
        profile=PROFILE,
    )
    sizes = {"num_test": 128} if args.tiny else {}
    data = hwprofiles.load_dataset(dataset, root=args.data_root, seed=config.seed, **sizes)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.out / "lenet5-nit.pt"
    train(config, checkpoint, data=data, progress=False)

    model = load_trained(checkpoint).model  # the float model the checkpoint holds
    train_loader, test_loader = make_loaders(data, batch_size=128, seed=0)
    calibration = [x for x, _ in list(train_loader)[:4]]

    profiles = {"compensated": hwprofiles.load_profile(PROFILE), "uncompensated": without_compensation(PROFILE)}
    results: dict = {"profile": PROFILE, "samples": args.samples, "times_s": list(TIMES_S.values())}
    print(f"{'time':>8}  " + "  ".join(f"{name:>24}" for name in profiles))
    for label, t in TIMES_S.items():
        row = []
        for name, profile in profiles.items():
            r = hwprofiles.evaluate(
                model, test_loader, profile, samples=args.samples, calibration=calibration, t_inference_s=t
            )
            results.setdefault(name, []).append({"mean": r.mean, "ci_low": r.ci_low, "ci_high": r.ci_high})
            row.append(f"{r.mean:.4f} [{r.ci_low:.3f}, {r.ci_high:.3f}]")
        print(f"{label:>8}  " + "  ".join(f"{cell:>24}" for cell in row))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    plot(results, args.out / "drift.png")
    print(f"written to {args.out / 'results.json'} and {args.out / 'drift.png'}")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("compensated", "uncompensated"):
        means = [p["mean"] for p in results[name]]
        ax.plot(results["times_s"], means, marker="o", label=f"{results['profile']}, {name}")
    ax.set(xscale="log", xlabel="time since programming (s)", ylabel="accuracy", ylim=(0, 1))
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main()
