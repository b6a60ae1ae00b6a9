"""A Transformer classifier on a PCM chip: what analog attention costs, and what NIT gives back.

What it shows: an ``nn.TransformerEncoder`` classifier reads each 28x28 image as a
sequence of 28 rows. ``hwprofiles.to_noisy`` converts its embedding, the attention
projections of every ``nn.MultiheadAttention``, the feed-forward layers and the head
(``hwprofiles.conversion_report`` lists them); the attention products themselves stay
digital unless ``analog_attention=True``. The clean-trained model and a copy fine-tuned
with noise injection under ``pcm-joshi2020`` are measured over K chips, one hour after
programming.

Run it on Fashion-MNIST (--data-root, or the Debian package dataset-fashion-mnist at
/usr/share/datasets/fashion-mnist)::

    python examples/04_transformer_under_pcm.py --epochs 3 --samples 10 --out runs/transformer

In seconds, on tiny synthetic data (what the tests run)::

    python examples/04_transformer_under_pcm.py --tiny --out /tmp/transformer

It prints the conversion report and the accuracies, and writes OUT/results.json.
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

PROFILE = "pcm-joshi2020"
ONE_HOUR_S = 3600.0


class RowTransformer(nn.Module):
    """Image rows as tokens: embed, a TransformerEncoder, mean over tokens, a linear head."""

    def __init__(self, row_width: int, num_classes: int, d_model: int = 64, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Linear(row_width, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=2 * d_model, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(images.flatten(1, 2))  # (batch, 1, rows, cols) -> (batch, rows, cols) -> d_model
        return self.head(self.encoder(tokens).mean(dim=1))


def fit(model: nn.Module, loader, epochs: int, lr: float) -> None:
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
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10, help="Chip instances per evaluation.")
    parser.add_argument("--out", type=Path, default=Path("examples-out/04"))
    args = parser.parse_args()

    if args.tiny:
        data = hwprofiles.load_dataset("synthetic", num_train=128, num_test=64, image_size=12, seed=0)
        args.epochs, args.samples = 1, 2
    else:
        data = hwprofiles.load_dataset("fashion-mnist", root=args.data_root, train_subset=20_000, test_subset=2_000)
    train_loader, test_loader = make_loaders(data, batch_size=64, seed=0)
    calibration = [x for x, _ in list(train_loader)[:2]]
    row_width = data.train[0][0].shape[-1]

    torch.manual_seed(0)
    model = RowTransformer(row_width, data.num_classes)
    fit(model, train_loader, args.epochs, lr=1e-3)
    print(hwprofiles.conversion_report(model, PROFILE))

    noisy = hwprofiles.to_noisy(model, PROFILE)
    hwprofiles.calibrate(noisy, calibration)
    fit(noisy, train_loader, max(1, args.epochs // 2), lr=3e-4)  # noise-injection fine-tuning
    hardened = hwprofiles.to_clean(noisy)

    results = {"profile": PROFILE, "t_inference_s": ONE_HOUR_S, "samples": args.samples}
    for name, trained in (("clean-trained", model), ("nit-finetuned", hardened)):
        result = hwprofiles.evaluate(
            trained, test_loader, PROFILE, samples=args.samples, calibration=calibration, t_inference_s=ONE_HOUR_S
        )
        ideal = hwprofiles.evaluate(trained, test_loader, "ideal", samples=1)
        print(f"{name:>14}: float {ideal.mean:.4f}, under {PROFILE} after 1 h {result}")
        results[name] = {"float": ideal.mean, "mean": result.mean, "ci_low": result.ci_low, "ci_high": result.ci_high}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"written to {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
