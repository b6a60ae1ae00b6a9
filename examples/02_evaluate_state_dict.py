"""Evaluate a model trained elsewhere, from its state_dict, under several device profiles.

What it shows: weights saved with ``torch.save(model.state_dict(), path)`` by any
training code are loaded into their architecture (here the zoo's LeNet-5, built with
``hwprofiles.get_model``) and measured over K simulated chips under each profile with
``hwprofiles.evaluate``: the mean accuracy and its 95% interval over chips.

Without --weights the script first makes such a file itself, training LeNet-5 for a
moment with plain PyTorch, as the code "elsewhere" would. With your own file::

    python examples/02_evaluate_state_dict.py --weights mine.pt --out runs/state-dict

(the file must be a state_dict of ``hwprofiles.get_model("lenet5", in_channels=1,
num_classes=10)``; for another architecture change ``build``). The command line does the
same: ``hwprofiles eval --model lenet5 --weights mine.pt -p pcm-joshi2020 -p rram-neurram``.
Fashion-MNIST is read from --data-root, or the Debian package dataset-fashion-mnist at
/usr/share/datasets/fashion-mnist. In seconds, on tiny synthetic data::

    python examples/02_evaluate_state_dict.py --tiny --out /tmp/state-dict

It prints one line per profile and writes them to OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

import hwprofiles
from hwprofiles.data import make_loaders

PROFILES = ["ideal", "pcm-joshi2020", "rram-neurram", "photonic-mzi"]


def build(num_classes: int) -> nn.Module:
    """The architecture the weights belong to."""
    return hwprofiles.get_model("lenet5", in_channels=1, num_classes=num_classes)


def train_elsewhere(path: Path, loader, num_classes: int, epochs: int) -> None:
    """Stand-in for training code that knows nothing of hwprofiles: it saves a state_dict."""
    torch.manual_seed(0)
    model = build(num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
    torch.save(model.state_dict(), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", default=bool(os.environ.get("HWPROFILES_EXAMPLES_TINY")))
    parser.add_argument("--data-root", help="Folder of the Fashion-MNIST IDX files (default: searched).")
    parser.add_argument("--weights", type=Path, help="A state_dict of LeNet-5 (default: train one here).")
    parser.add_argument("--samples", type=int, default=10, help="Chip instances per profile.")
    parser.add_argument("--out", type=Path, default=Path("examples-out/02"))
    args = parser.parse_args()

    if args.tiny:
        data = hwprofiles.load_dataset("synthetic", num_train=256, num_test=128, seed=0)
        args.samples = 2
    else:
        data = hwprofiles.load_dataset("fashion-mnist", root=args.data_root)
    train_loader, test_loader = make_loaders(data, batch_size=128, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.weights is None:
        args.weights = args.out / "lenet5-state_dict.pt"
        train_elsewhere(args.weights, train_loader, data.num_classes, epochs=1 if args.tiny else 3)

    model = build(data.num_classes)
    model.load_state_dict(torch.load(args.weights, weights_only=True))  # never unpickle code from a file
    calibration = [x for x, _ in list(train_loader)[:4]]  # DAC ranges from training data, never test data

    results = {"weights": str(args.weights), "samples": args.samples, "profiles": {}}
    for profile in PROFILES:
        result = hwprofiles.evaluate(model, test_loader, profile, samples=args.samples, calibration=calibration)
        print(f"{profile:>15}: {result}")
        results["profiles"][profile] = {"mean": result.mean, "ci_low": result.ci_low, "ci_high": result.ci_high}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"written to {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
