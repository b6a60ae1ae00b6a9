"""Harden your own torchvision model against PCM noise, and measure what it gained.

What it shows: a torchvision model (ResNet-18 unless --arch says otherwise; its stem
made to take one-channel images) is trained clean with plain PyTorch, then fine-tuned with noise injection under the
``pcm-joshi2020`` profile: ``hwprofiles.to_noisy`` makes a noisy twin whose every training
step draws a fresh chip, and ``hwprofiles.to_clean`` gives the float model back. Both
models are then measured over K simulated chips with ``hwprofiles.evaluate``.

Run it on Fashion-MNIST (IDX files under --data-root, or the Debian package
dataset-fashion-mnist at /usr/share/datasets/fashion-mnist, found without options)::

    python examples/01_harden_torchvision_model.py --epochs 2 --samples 10 --out runs/harden

In seconds, on a tiny synthetic dataset (what the tests run)::

    python examples/01_harden_torchvision_model.py --tiny --out /tmp/harden

It prints both accuracies and writes them to OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import hwprofiles
from hwprofiles.data import make_loaders

PROFILE = "pcm-joshi2020"


def build_model(arch: str, num_classes: int) -> nn.Module:
    """Your torchvision model, its first convolution made to take one-channel images."""
    torch.manual_seed(0)
    model = torchvision.models.get_model(arch, num_classes=num_classes)
    name, stem = next((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
    one_channel = nn.Conv2d(
        1, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=stem.bias is not None
    )
    model.set_submodule(name, one_channel)
    return model


def fit(model: nn.Module, loader, epochs: int, lr: float) -> None:
    """A plain PyTorch training loop; on a noisy twin each step sees a fresh chip."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", default=bool(os.environ.get("HWPROFILES_EXAMPLES_TINY")))
    parser.add_argument("--data-root", help="Folder of the Fashion-MNIST IDX files (default: searched).")
    parser.add_argument("--arch", default="resnet18", help="A torchvision classification model.")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=10, help="Chip instances per evaluation.")
    parser.add_argument("--out", type=Path, default=Path("examples-out/01"))
    args = parser.parse_args()

    if args.tiny:
        # few small images and a small network: a fraction of a minute on a laptop's CPU
        data = hwprofiles.load_dataset("synthetic", num_train=32, num_test=32, image_size=16, seed=0)
        args.arch, args.epochs, args.samples = "mobilenet_v3_small", 1, 2
    else:
        data = hwprofiles.load_dataset("fashion-mnist", root=args.data_root, train_subset=10_000, test_subset=2_000)
    train_loader, test_loader = make_loaders(data, batch_size=32 if args.tiny else 64, seed=0)
    calibration = [x for x, _ in list(train_loader)[:2]]  # DAC input ranges come from training data

    model = build_model(args.arch, data.num_classes)
    fit(model, train_loader, args.epochs, lr=1e-3)

    noisy = hwprofiles.to_noisy(model, PROFILE)  # a copy: `model` stays the clean-trained one
    hwprofiles.calibrate(noisy, calibration)
    fit(noisy, train_loader, args.epochs, lr=5e-4)  # noise-injection fine-tuning
    hardened = hwprofiles.to_clean(noisy)

    results = {"arch": args.arch, "profile": PROFILE, "samples": args.samples}
    for name, trained in (("clean-trained", model), ("hardened", hardened)):
        result = hwprofiles.evaluate(trained, test_loader, PROFILE, samples=args.samples, calibration=calibration)
        print(f"{name:>14} under {PROFILE}: {result}  (mean and 95% interval over {result.n} chips)")
        results[name] = {"mean": result.mean, "ci_low": result.ci_low, "ci_high": result.ci_high, "n": result.n}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"written to {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
