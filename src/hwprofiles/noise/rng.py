"""Seeded normal draws for the noise engine: counter-based, fast on CPU, split over threads.

Every CPU draw of float32 or float64 normals takes one 64-bit key from the caller's
generator and fills element ``i`` from Philox counters alone (:mod:`hwprofiles.noise.philox`),
so one seed gives the same numbers on every machine, with any ``torch.set_num_threads``
and whichever backend computes them:

``numba``
    the generator compiled and vectorised by numba (a dependency of hwprofiles), about
    twice as fast as torch's ``normal_`` per thread; chosen when numba can be imported.
``torch``
    the same steps in torch operations; bit-identical, but more than ten times slower than
    torch's ``normal_``: only for where numba cannot be imported (``pip install numba``).

``HWPROFILES_RNG=numba|torch`` forces one. Float64 draws are the float32 numbers cast
(standard normals to about 7 digits). Other devices and dtypes draw with ``torch.randn``
on the device.

:func:`add_normal` fuses a draw with the add that uses it (``y + sigma z`` or
``y + y sigma z``) so that each noisy tensor is read and written once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from hwprofiles.errors import NoiseConfigError
from hwprofiles.lazy import optional_module
from hwprofiles.noise import philox

BACKEND_ENV = "HWPROFILES_RNG"
BACKENDS = ("numba", "torch")
FAST_DTYPES = (torch.float32, torch.float64)
PARALLEL_MIN_ELEMENTS = 1 << 17  # below this, handing work to threads costs more than it saves
SPLIT_ALIGN = 4 * philox.GROUP_COUNTERS  # threads split at group boundaries: no group computed twice

_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()
NUMBA_KERNELS = "hwprofiles.noise.philox_numba"


def backend() -> str:
    """The backend CPU draws use now: ``$HWPROFILES_RNG`` if set, else numba when it imports."""
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced and forced not in BACKENDS:
        raise NoiseConfigError(
            f"{BACKEND_ENV}={forced!r} is not a generator backend; use one of: {', '.join(BACKENDS)}"
        )
    if forced == "torch":
        return "torch"
    if _numba_kernels() is not None:
        return "numba"
    if forced == "numba":
        raise NoiseConfigError(f"{BACKEND_ENV}=numba needs numba, which cannot be imported here: pip install numba")
    return "torch"


def _numba_kernels() -> ModuleType | None:
    return optional_module(NUMBA_KERNELS)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers != workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hwprofiles-rng")
            _pool_workers = workers
        return _pool


def in_parallel(numel: int, fill: Callable[[int, int], None]) -> None:
    """``fill(start, stop)`` over ``[0, numel)`` in contiguous pieces, on up to ``torch.get_num_threads()``
    threads (the numbers do not depend on the pieces). Four pieces per thread, taken in turn, so
    that a thread slowed by other work on its core does not hold up the whole draw; the calling
    thread takes pieces too (it is running already: one thread fewer to wake)."""
    workers = min(torch.get_num_threads(), -(-numel // PARALLEL_MIN_ELEMENTS))
    if workers <= 1 or threading.current_thread().name.startswith("hwprofiles-rng"):
        fill(0, numel)
        return
    pieces = min(4 * workers, -(-numel // PARALLEL_MIN_ELEMENTS))
    step = -(-numel // pieces // SPLIT_ALIGN) * SPLIT_ALIGN
    queue = iter([(s, min(s + step, numel)) for s in range(0, numel, step)])
    lock = threading.Lock()

    def take_pieces() -> None:
        while True:
            with lock:
                piece = next(queue, None)
            if piece is None:
                return
            fill(*piece)

    pool = _executor(workers - 1)
    helpers = [pool.submit(take_pieces) for _ in range(workers - 1)]
    try:
        take_pieces()
    finally:  # the helpers finish (or fail) before their arrays may go
        for helper in helpers:
            helper.result()


def draw_key(generator: torch.Generator) -> int:
    """A 64-bit key from ``generator`` (one draw of two 32-bit words)."""
    low, high = torch.randint(0, 1 << 32, (2,), generator=generator).tolist()
    return int(low) | (int(high) << 32)


def normal(key: int, numel: int) -> torch.Tensor:
    """``numel`` float32 standard normals of ``key`` (elements ``0 .. numel-1``) on CPU."""
    kernels = _numba_kernels() if backend() == "numba" else None
    if kernels is None:
        return philox.normal(key, numel)
    out = torch.empty(numel, dtype=torch.float32)
    array = out.numpy()
    in_parallel(numel, lambda start, stop: kernels.fill(array, array, 0.0, 0, key, start, stop))
    return out


def randn(
    shape: torch.Size | tuple[int, ...], generator: torch.Generator, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Standard normal draws of ``shape``, reproducible from ``generator`` (see the module)."""
    if device.type != "cpu" or dtype not in FAST_DTYPES:
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    numel = 1
    for n in shape:
        numel *= int(n)
    return normal(draw_key(generator), numel).view(shape).to(dtype)


def fusable(y: torch.Tensor) -> bool:
    """Whether :func:`add_normal` can draw and combine in one pass: ``y`` is a CPU float tensor
    (with or without gradient)."""
    return y.device.type == "cpu" and y.dtype in FAST_DTYPES


def add_normal(y: torch.Tensor, sigma: float, generator: torch.Generator, *, multiplicative: bool) -> torch.Tensor:
    """``y + z sigma`` (or ``y + y (z sigma)`` when ``multiplicative``) for fresh standard normals
    ``z`` of ``y``'s shape drawn as :func:`randn` draws them: the same numbers as drawing ``z``
    and combining, rounded step by step. One pass over memory with the numba backend when ``y``
    is a CPU float tensor; ``y`` itself is never changed. Under autograd the gradient is that of
    the two steps (``y``'s passes unchanged, or times ``1 + z sigma``, ``z`` drawn again from its
    key rather than kept)."""
    if not fusable(y):
        z = randn(y.shape, generator, device=y.device, dtype=y.dtype)
        t = z * sigma
        return y + y * t if multiplicative else y + t
    key = draw_key(generator)
    kernels = _numba_kernels() if backend() == "numba" else None
    if kernels is None:
        return philox.combine(y, philox.normal(key, y.numel()).view(y.shape), sigma, multiplicative)
    if torch.is_grad_enabled() and y.requires_grad:
        return _AddNormal.apply(y, _Draw(sigma, key, multiplicative, kernels))
    return _add_normal(kernels, y, sigma, key, multiplicative)


def _add_normal(kernels: ModuleType, y: torch.Tensor, sigma: float, key: int, multiplicative: bool) -> torch.Tensor:
    source = y.detach().contiguous()
    out = torch.empty_like(source)
    ys, outs, mode = source.view(-1).numpy(), out.view(-1).numpy(), 2 if multiplicative else 1
    in_parallel(y.numel(), lambda start, stop: kernels.fill(outs, ys, sigma, mode, key, start, stop))
    return out


@dataclass(frozen=True)
class _Draw:
    """What the fused draw needs besides ``y``, as one argument: torch's profiler with
    ``record_shapes=True`` casts every int argument of an autograd function to int64, and a
    key reaches 2^64 - 1."""

    sigma: float
    key: int
    multiplicative: bool
    kernels: ModuleType


class _AddNormal(torch.autograd.Function):
    """The fused draw under autograd: gradients of ``y + t`` and ``y + y t`` (``t = z sigma``)."""

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, draw: _Draw) -> torch.Tensor:
        ctx.draw = draw
        return _add_normal(draw.kernels, y, draw.sigma, draw.key, draw.multiplicative)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        draw: _Draw = ctx.draw
        if not draw.multiplicative:
            return grad, None
        t = normal(draw.key, grad.numel()).view(grad.shape).to(grad.dtype) * draw.sigma
        return grad + grad * t, None


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
