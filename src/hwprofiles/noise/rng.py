"""Seeded normal draws, split over CPU threads.

Per-element Gaussian noise is the main cost of the noise engine on CPU, and torch
draws a tensor's normals on one thread while the convolutions around it use all of
them. Large draws are therefore cut into a fixed number of chunks, each drawn by its
own generator seeded from the caller's generator, on a small thread pool (torch
releases the GIL while it fills a tensor).

The chunking does not depend on how many threads there are, so one seed gives the
same numbers on every machine and with any ``torch.set_num_threads``; threads only
change how fast they come.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

CHUNKS = 4  # fixed: the numbers must not depend on the machine
PARALLEL_MIN_ELEMENTS = 1 << 19  # below this, handing work to threads costs more than it saves
_SEED_HIGH = 2**62

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hwprofiles-rng")
            _pool_workers = workers
        return _pool


def randn(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Standard normal draws of ``shape``, reproducible from ``generator``.

    Small draws and non-CPU devices are one ``torch.randn`` call; large CPU draws are
    :data:`CHUNKS` chunks drawn in parallel, each from a generator seeded by ``generator``.
    """
    numel = 1
    for n in shape:
        numel *= int(n)
    if device.type != "cpu" or numel < PARALLEL_MIN_ELEMENTS:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    seeds = torch.randint(0, _SEED_HIGH, (CHUNKS,), generator=generator).tolist()
    out = torch.empty(numel, device=device, dtype=dtype)
    chunks = out.chunk(CHUNKS)

    def fill(i: int) -> None:
        chunks[i].normal_(generator=torch.Generator().manual_seed(seeds[i]))

    workers = min(CHUNKS, torch.get_num_threads())
    if workers <= 1 or threading.current_thread().name.startswith("hwprofiles-rng"):
        for i in range(CHUNKS):
            fill(i)
    else:
        list(_executor(workers).map(fill, range(CHUNKS)))
    return out.view(shape)


def truncated_randn(
    shape: torch.Size | tuple[int, ...],
    generator: torch.Generator,
    bound: float,
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Standard normal draws truncated to ``[-bound, bound]``, reproducible from ``generator``.

    Inverse CDF: a uniform draw in ``[Phi(-bound), Phi(bound))`` per element, mapped through
    ``Phi^-1`` in float64, so each element takes exactly one draw and none lands on (or is
    pinned at) the bounds, as clipping would do.
    """
    low = float(torch.special.ndtr(torch.tensor(-bound, dtype=torch.float64)))
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return torch.special.ndtri(u.mul_(1.0 - 2.0 * low).add_(low)).to(dtype)
