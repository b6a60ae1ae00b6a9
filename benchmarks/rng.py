"""How fast are the noise engine's normal draws on CPU? Measured, never asserted.

Nanoseconds per element, on one tensor of ``--numel`` float32 elements (default 10^7), for:

``torch normal_``
    torch's own generator, ``out.normal_(generator=g)`` (what the engine used before).
``philox numba`` / ``philox numba 1 thread``
    the engine's generator (:mod:`hwprofiles.noise.rng`), compiled by numba, on the torch
    thread count and on one thread.
``philox torch``
    the same generator in torch operations (the fallback without numba; same numbers).
``fused add numba``
    ``y + sigma z`` drawn and added in one pass (:func:`hwprofiles.noise.rng.add_normal`).
``draw then add``
    the engine's draw followed by a separate add.
``... into a tensor``
    the same kernels writing into a tensor made beforehand, as torch's ``normal_`` does here.
    The rows above allocate their output, as the engine does; an output above glibc's mmap
    threshold (32 MB: 10^7 elements are 40 MB) comes fresh from the kernel each time, and its
    page faults can cost more than the draws.
``floor: one add pass``
    ``torch.add(y, x, out=o)``: reading and writing each element once, the least any noise
    can cost.

With ``--models``, also the eval forward of each model under ``--profile`` (batch 256),
noisy / clean, with this generator and with the previous one (torch's ``normal_`` in four
chunks on threads, then a separate add) swapped in, all interleaved in one process so that
both see the same load.

Repeats run in rotating order; each ratio is the median over repeats of the per-repeat
ratio, so slow changes of the machine's load cancel.

    python benchmarks/rng.py                     # prints, writes docs/results/rng.json
    python benchmarks/rng.py --models resnet20,vgg11 --repeats 5
    python benchmarks/speed.py --parts rng       # the same, as a part of speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hwprofiles  # noqa: F401  before torch, as a user's script would: it tunes torch's OpenMP (hwprofiles.cpu_tuning)

# isort: split
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import overhead  # noqa: E402  (model pairs and input batches)

from hwprofiles.noise import philox, rng  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "docs" / "results"
BASELINE = "torch normal_"


def _forced(backend: str, fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        before = os.environ.get(rng.BACKEND_ENV)
        os.environ[rng.BACKEND_ENV] = backend
        try:
            fn()
        finally:
            if before is None:
                del os.environ[rng.BACKEND_ENV]
            else:
                os.environ[rng.BACKEND_ENV] = before

    return run


def _one_thread(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            fn()
        finally:
            torch.set_num_threads(threads)

    return run


def candidates(numel: int, with_numba: bool) -> dict[str, Callable[[], None]]:
    g = torch.Generator().manual_seed(0)
    out, y, x = torch.empty(numel), torch.randn(numel), torch.randn(numel)
    fns: dict[str, Callable[[], None]] = {
        BASELINE: lambda: out.normal_(generator=g),
        "floor: one add pass": lambda: torch.add(y, x, out=out),
        "philox torch": _forced("torch", lambda: philox.normal(rng.draw_key(g), numel)),
    }
    if with_numba:
        fns["philox numba"] = _forced("numba", lambda: rng.normal(rng.draw_key(g), numel))
        fns["philox numba 1 thread"] = _one_thread(fns["philox numba"])
        fns["fused add numba"] = _forced("numba", lambda: rng.add_normal(y, 0.1, g, multiplicative=False))
        fns["draw then add numba"] = _forced("numba", lambda: y + rng.normal(rng.draw_key(g), numel) * 0.1)
        from hwprofiles.noise import philox_numba

        outs, ys = out.numpy(), y.numpy()

        def into(mode: int) -> Callable[[], None]:
            def run() -> None:
                key = rng.draw_key(g)
                rng.in_parallel(numel, lambda start, stop: philox_numba.fill(outs, ys, 0.1, mode, key, start, stop))

            return run

        fns["philox numba into a tensor"] = into(0)
        fns["fused add numba into a tensor"] = into(1)
    return fns


def measure(numel: int, repeats: int, warmup: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """ns per element of every candidate, and each one's time over torch ``normal_``'s."""
    try:
        started = time.perf_counter()
        from hwprofiles.noise import philox_numba  # noqa: F401  (compiles, or loads the cache)

        philox_numba.fill(torch.empty(8).numpy(), torch.empty(8).numpy(), 0.0, 0, 1, 0, 8)
        first_call_s: float | None = time.perf_counter() - started
    except ImportError:
        first_call_s = None
    fns = candidates(numel, with_numba=first_call_s is not None)
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(repeats):
        for n in names[i % len(names) :] + names[: i % len(names)]:
            start = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - start)
    rows = []
    for n in names:
        ns = 1e9 * statistics.median(times[n]) / numel
        ratio = statistics.median(a / b for a, b in zip(times[n], times[BASELINE]))
        rows.append({"name": n, "ns_per_element": ns, "vs_torch_normal": ratio})
        log(f"rng {n:24s} {ns:6.2f} ns/element  {ratio:5.2f}x torch normal_ ({1 / ratio:4.1f}x faster)")
    return {
        "numel": numel,
        "threads": torch.get_num_threads(),
        "numba_first_call_s": first_call_s,
        "rows": rows,
        "load_average_1min": os.getloadavg()[0],
    }


def previous_randn(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """The generator before Philox: torch's normal_ in four chunks, each seeded from ``generator``, on threads."""
    numel = 1
    for n in shape:
        numel *= int(n)
    if device.type != "cpu" or numel < 1 << 19:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    seeds = torch.randint(0, 2**62, (4,), generator=generator).tolist()
    out = torch.empty(numel, device=device, dtype=dtype)
    chunks = out.chunk(4)
    pool = rng._executor(min(4, torch.get_num_threads()))
    list(pool.map(lambda i: chunks[i].normal_(generator=torch.Generator().manual_seed(seeds[i])), range(4)))
    return out.view(shape)


def previous_add_normal(
    y: torch.Tensor, sigma: float, generator: torch.Generator, *, multiplicative: bool
) -> torch.Tensor:
    z = previous_randn(y.shape, generator, device=y.device, dtype=y.dtype)
    return torch.addcmul(y, y, z, value=sigma, out=z) if multiplicative else torch.add(y, z, alpha=sigma, out=z)


def _with_previous_generator(fn: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        saved = rng.randn, rng.add_normal
        rng.randn, rng.add_normal = previous_randn, previous_add_normal  # type: ignore[assignment]
        try:
            fn()
        finally:
            rng.randn, rng.add_normal = saved

    return run


def engine_side_by_side(
    models: list[str], profile: str, repeats: int, warmup: int, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    """Eval forward noisy / clean per model, with the new and the previous generator."""
    x, _ = overhead.batch(256)
    rows = []
    for name in models:
        clean, noisy = overhead.build_pair(name, profile)
        clean.eval()
        noisy.eval()
        fns = {
            "clean": overhead.forward_fn(clean, x),
            "philox": overhead.forward_fn(noisy, x),
            "previous": _with_previous_generator(overhead.forward_fn(noisy, x)),
        }
        times: dict[str, list[float]] = {n: [] for n in fns}
        for _ in range(warmup):
            for fn in fns.values():
                fn()
        for i in range(repeats):
            order = list(fns)[i % 3 :] + list(fns)[: i % 3]
            for n in order:
                start = time.perf_counter()
                fns[n]()
                times[n].append(time.perf_counter() - start)
        row = {
            "model": name,
            "profile": profile,
            "clean_ms": 1e3 * statistics.median(times["clean"]),
            "philox_vs_clean": statistics.median(a / b for a, b in zip(times["philox"], times["clean"])),
            "previous_vs_clean": statistics.median(a / b for a, b in zip(times["previous"], times["clean"])),
            "load_average_1min": os.getloadavg()[0],
        }
        log(
            f"rng {name:10s} {profile} forward / clean: philox {row['philox_vs_clean']:.2f}x, previous generator "
            f"{row['previous_vs_clean']:.2f}x (clean {row['clean_ms']:.0f} ms, load {row['load_average_1min']:.1f})"
        )
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--numel", type=int, default=10**7)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's own)")
    p.add_argument("--models", default="", help="comma-separated models for the side-by-side forward (default: none)")
    p.add_argument("--profile", default="gaussian-additive")
    p.add_argument("--skip-draws", action="store_true", help="only the side-by-side forward")
    p.add_argument("--output", type=Path, default=RESULTS / "rng.json")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = {} if args.skip_draws else measure(args.numel, args.repeats, args.warmup)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if models:
        result["forward"] = engine_side_by_side(models, args.profile, args.repeats, args.warmup)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
