"""Fake quantisation in one pass over memory, compiled by numba (see :func:`hwprofiles.nn.analog.fake_quantize`).

The float32 steps of torch's fake-quantize kernel in its order, compiled without fast-math,
so the numbers are bit-identical: times the float32 reciprocal of the step, rounded half to
even, clipped to ``[qmin, qmax]`` (a NaN stays NaN), times the step. Imported only when a CPU
quantisation first needs it; functions release the GIL, so :func:`hwprofiles.noise.rng.in_parallel`
runs disjoint ranges on several threads.
"""

from __future__ import annotations

from hwprofiles.cpu_tuning import prefer_wide_vectors

prefer_wide_vectors()  # before numba's first import, which fixes its target

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

_jit = njit(nogil=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)
_inline = njit(inline="always", nogil=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)


@_inline
def _level(x, inverse, qmin, qmax):
    """The clipped step of ``x``, and whether it was inside ``[qmin, qmax]`` (false for NaN,
    as in torch's gradient mask; a NaN step stays NaN)."""
    q = np.rint(x * inverse)
    inside = q >= qmin and q <= qmax
    if q < qmin:
        q = qmin
    elif q > qmax:
        q = qmax
    return q, inside


# The loops index with unsigned integers: numba wraps negative signed ones, and that made LLVM
# gather and scatter each element instead of loading a vector (0.54 -> 0.27 ns an element).
@_jit
def _quantise(out, x, inverse, step, qmin, qmax, start, stop):
    for i in range(start, stop):
        j = np.uint64(i)
        q, _ = _level(x[j], inverse, qmin, qmax)
        out[j] = q * step


@_jit
def _quantise_marking(out, passed, x, inverse, step, qmin, qmax, start, stop):
    for i in range(start, stop):
        j = np.uint64(i)
        q, inside = _level(x[j], inverse, qmin, qmax)
        passed[j] = inside
        out[j] = q * step


def _constants(scale: float, qmin: int, qmax: int) -> tuple[np.float32, np.float32, np.float32, np.float32]:
    """The kernel's float32 constants: the reciprocal of the step (as torch computes it), the step, the bounds."""
    f32 = np.float32
    return f32(1.0) / f32(scale), f32(scale), f32(qmin), f32(qmax)


def quantise_marking(
    out: np.ndarray, passed: np.ndarray, x: np.ndarray, scale: float, qmin: int, qmax: int, start: int, stop: int
) -> None:
    """:func:`quantise`, and ``passed`` (bool) marks the elements whose step was not clipped:
    where the straight-through gradient passes."""
    _quantise_marking(out, passed, x, *_constants(scale, qmin, qmax), start, stop)


def quantise(out: np.ndarray, x: np.ndarray, scale: float, qmin: int, qmax: int, start: int, stop: int) -> None:
    """Elements ``start .. stop-1`` of the flat float32 arrays: ``out = fake_quantize(x)`` (``out`` may be ``x``)."""
    _quantise(out, x, *_constants(scale, qmin, qmax), start, stop)
