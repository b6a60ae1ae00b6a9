"""Could K chip instances run together faster than K passes? Measured, never asserted.

A batched Monte Carlo path would stack the K programmed weight sets and run the inputs of
all K chips as one batch of K x B. Its per-element work (noise draws, DAC/ADC quantisation,
pooling, activations) is at least that of one chip over K x B inputs; what it could save is
the per-chip fixed cost (programming, per-operation dispatch). For each model and profile
this times, interleaved (each repeat starts with the next callable), on CPU, eval, no_grad:

``k_passes``
    K x (``program(seed=k)``, one forward of B inputs): what ``measure`` does today.
``stacked_floor``
    one chip programmed, one forward of K x B inputs: the floor of a stacked path's
    per-element work (no batched path exists; this bounds what one could reach).
``fixed_per_chip``
    K x (``program(seed=k)``, one forward of 1 input): the per-chip fixed cost, the most
    batching chips could remove while the per-element work stays as it is at batch B.
``clean_k_passes`` / ``clean_stacked``
    the float model: K forwards of B against one forward of K x B.
``stacked_exact`` (sequential models: LeNet-5)
    a prototype of an exact batched path: K programmed copies of the model; layers without
    noise run once over K x B inputs, every twin and every noise hook runs chip by chip on
    its slice with that chip's kernels and streams. Its output is compared with the K
    passes' (``exact``: torch.equal). Stacking the products themselves is not exact on CPU:
    ``torch.bmm`` differs from ``F.linear`` in float64, a grouped convolution from K
    convolutions in float32 (``exact_kernels`` records both).

The load average (1 min) is recorded before and after each model and profile.

    python benchmarks/batch_chips.py                    # docs/results/batch_chips.json
    python benchmarks/batch_chips.py --models lenet5 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import overhead  # noqa: E402
import speed  # noqa: E402

import hwprofiles  # noqa: E402
from hwprofiles.io import write_text  # noqa: E402
from hwprofiles.nn.mvm import AnalogMVM  # noqa: E402
from hwprofiles.nn.twin import NoisyTwin  # noqa: E402

SEQUENTIAL = ("lenet5",)  # models whose forward is their leaf layers in order


def leaves(model: nn.Module) -> list[nn.Module]:
    return [
        m
        for m in model.modules()
        if (isinstance(m, NoisyTwin) or not list(m.children())) and not isinstance(m, AnalogMVM)
    ]


def stacked(copies: list[nn.Module], xk: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Chip k's outputs in rows [k B, (k+1) B): the K copies' pipelines on their slices."""
    xs = list(xk.split(batch_size))
    for k, c in enumerate(copies):  # the model's pre-hooks (input check, input noise) per chip
        for pre in c._forward_pre_hooks.values():
            r = pre(c, (xs[k],))
            if r is not None:
                xs[k] = r[0] if isinstance(r, tuple) else r
    h = torch.cat(xs)
    layers = [leaves(c) for c in copies]
    for i, layer in enumerate(layers[0]):
        if isinstance(layer, NoisyTwin):
            h = torch.cat([layers[k][i](hk) for k, hk in enumerate(h.split(batch_size))])
        elif layer._forward_hooks:
            outs = []
            for k, yk in enumerate(layer.forward(h).split(batch_size)):  # the float op once
                mk = layers[k][i]
                for hook in mk._forward_hooks.values():
                    r = hook(mk, (None,), yk)
                    yk = yk if r is None else r
                outs.append(yk)
            h = torch.cat(outs)
        else:
            h = layer(h)
    return h


def exact_kernels(k: int, batch_size: int) -> dict[str, bool]:
    """Whether stacked products equal per-chip ones (torch.equal), on LeNet-5's shapes."""
    gen = torch.Generator().manual_seed(0)
    out = {}
    for dt in (torch.float32, torch.float64):
        x = torch.randn(k, batch_size, 400, generator=gen, dtype=dt)
        w = torch.randn(k, 120, 400, generator=gen, dtype=dt)
        per_chip = torch.stack([F.linear(x[i], w[i]) for i in range(k)])
        out[f"bmm_{dt}"] = torch.equal(torch.bmm(x, w.transpose(1, 2)), per_chip)
        xc = torch.randn(k, batch_size, 6, 14, 14, generator=gen, dtype=dt)
        wc = torch.randn(k, 16, 6, 5, 5, generator=gen, dtype=dt)
        per_chip = torch.stack([F.conv2d(xc[i], wc[i]) for i in range(k)])
        xg = xc.transpose(0, 1).reshape(batch_size, k * 6, 14, 14)
        grouped = F.conv2d(xg, wc.reshape(k * 16, 6, 5, 5), groups=k).view(batch_size, k, 16, 10, 10)
        out[f"grouped_conv_{dt}"] = torch.equal(grouped.transpose(0, 1), per_chip)
    return out


def measure(model_name: str, profile_name: str, k: int, batch_size: int, repeats: int) -> dict[str, Any]:
    x, _ = overhead.batch(batch_size)
    xk = x.repeat(k, *([1] * (x.dim() - 1)))
    clean, noisy = overhead.build_pair(model_name, profile_name)
    clean.eval()
    noisy.eval()

    @torch.no_grad()
    def k_passes() -> None:
        for seed in range(k):
            hwprofiles.program(noisy, seed=seed)
            noisy(x)

    @torch.no_grad()
    def stacked_floor() -> None:
        hwprofiles.program(noisy, seed=0)
        noisy(xk)

    @torch.no_grad()
    def fixed_per_chip() -> None:
        for seed in range(k):
            hwprofiles.program(noisy, seed=seed)
            noisy(x[:1])

    @torch.no_grad()
    def clean_k_passes() -> None:
        for _ in range(k):
            clean(x)

    @torch.no_grad()
    def clean_stacked() -> None:
        clean(xk)

    fns = {
        "k_passes": k_passes,
        "stacked_floor": stacked_floor,
        "fixed_per_chip": fixed_per_chip,
        "clean_k_passes": clean_k_passes,
        "clean_stacked": clean_stacked,
    }
    row: dict[str, Any] = {"model": model_name, "profile": profile_name, "K": k, "batch_size": batch_size}
    if model_name in SEQUENTIAL:
        copies = [copy.deepcopy(noisy) for _ in range(k)]

        @torch.no_grad()
        def stacked_exact() -> torch.Tensor:
            for seed, c in enumerate(copies):
                hwprofiles.program(c, seed=seed)
            return stacked(copies, xk, batch_size)

        @torch.no_grad()
        def k_outputs() -> torch.Tensor:
            outs = []
            for seed in range(k):
                hwprofiles.program(noisy, seed=seed)
                outs.append(noisy(x))
            return torch.cat(outs)

        row["exact"] = torch.equal(stacked_exact(), k_outputs())
        fns["stacked_exact"] = stacked_exact
    load_before = os.getloadavg()[0]
    timing = speed.interleaved(fns, repeats, warmup=1)
    row["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    for name in ("stacked_exact", "stacked_floor", "fixed_per_chip"):
        if name in fns:
            row[f"{name}/k_passes"] = timing["ratios"][f"{name}/k_passes"]
    row["clean_stacked/clean_k_passes"] = timing["ratios"]["clean_stacked/clean_k_passes"]
    return row | timing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["lenet5", "resnet20"])
    ap.add_argument("--profiles", nargs="+", default=["gaussian-additive", "pcm-joshi2020"])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=speed.RESULTS / "batch_chips.json")
    args = ap.parse_args()
    rows = []
    for model_name in args.models:
        for profile_name in args.profiles:
            row = measure(model_name, profile_name, args.k, args.batch_size, args.repeats)
            rows.append(row)
            med = row["median_ms"]
            exact = (
                f"exact path / passes {row['stacked_exact/k_passes']:.2f} (equal: {row['exact']}) | "
                if "exact" in row
                else ""
            )
            print(
                f"{model_name:9s} {profile_name:18s} K={args.k}: {args.k} passes {med['k_passes']:8.0f} ms | "
                + exact
                + f"stacked floor / passes {row['stacked_floor/k_passes']:.2f} | "
                f"fixed per chip / passes {row['fixed_per_chip/k_passes']:.2f} | "
                f"clean stacked / clean passes {row['clean_stacked/clean_k_passes']:.2f} | "
                f"load {row['load_avg_1min']}",
                flush=True,
            )
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count()}
    kernels = exact_kernels(args.k, args.batch_size)
    print(f"stacked products equal to per-chip ones: {kernels}")
    write_text(args.out, json.dumps({"machine": info, "exact_kernels": kernels, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
