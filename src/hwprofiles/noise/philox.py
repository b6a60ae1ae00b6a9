"""The noise engine's normal generator, written in plain torch operations.

Counter-based: element ``i`` of a draw is a function of a 64-bit key and ``i`` alone, so
one key gives the same numbers whatever the threads, the block split or the size (a
shorter draw is a prefix of a longer one), and the caller's generator only has to give
one key per draw to keep splitting streams per noise site and chip.

Bits: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
counter ``j`` as (low word, high word, 0, 0), key (low word, high word). Elements come in
groups of ``4 G`` (``G`` = :data:`GROUP_COUNTERS`): group ``g`` takes counters ``g G .. g G + G - 1``,
and the pair of words (0, 1) of counter ``g G + k`` gives elements ``k`` and ``G + k`` of the
group, words (2, 3) elements ``2 G + k`` and ``3 G + k`` (so vectorised code reads and writes
contiguous memory).

Normals: Box-Muller on each pair of words ``(a, b)``: ``r = sqrt(-2 log u)`` with
``u = min(a, 2^32 - 256) 2^-32 + 2^-33`` (never 0 or 1, and exact for small ``a``, so the
tails beyond 6 sigma keep their frequency), and the angle from ``b``: its top two bits pick
the quadrant, the other 30 an angle in ``[-pi/4, pi/4)``, whose sine and cosine are short
polynomials. ``log`` splits off the exponent by the float's bits and sums the atanh series of
the mantissa. Every step is one IEEE single-precision operation (no fused multiply-add), in
the order written here, so :mod:`hwprofiles.noise.philox_numba` (the same steps compiled and
vectorised) gives bit-identical numbers; the tests check it.
"""

from __future__ import annotations

import math

import torch

MASK32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57  # round multipliers
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85  # key schedule (golden ratio, sqrt(3) - 1)
ROUNDS = 10

U_MAX_WORD = 4294967040.0  # 2^32 - 256: the largest float32 below 2^32, so u < 1
TWO_M32, TWO_M33, TWO_M30 = 2.0**-32, 2.0**-33, 2.0**-30
SQRT_HALF_MANTISSA = 1.41421356  # mantissas above it are halved, so log's series sees [0.71, 1.41)
LN2 = 0.6931471805599453
HALF_PI = math.pi / 2
# log(f) = 2 s (1 + s^2/3 + s^4/5 + s^6/7 + s^8/9), s = (f - 1)/(f + 1), |s| < 0.172
LOG_SERIES = (1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0)
# sin and cos on [-pi/4, pi/4] (Cephes sinf/cosf coefficients)
SIN_POLY = (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1)
COS_POLY = (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2)

GROUP_COUNTERS = 256
CHUNK_GROUPS = 64  # the torch version works in pieces of this many groups (in the cache, bounded memory)


def round_keys(key: int) -> list[tuple[int, int]]:
    """The ten (k0, k1) round keys of Philox4x32-10 for a 64-bit ``key``."""
    k0, k1 = key & MASK32, (key >> 32) & MASK32
    keys = []
    for _ in range(ROUNDS):
        keys.append((k0, k1))
        k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
    return keys


def philox(counter: tuple[torch.Tensor, ...], key: int) -> tuple[torch.Tensor, ...]:
    """Philox4x32-10 of the four 32-bit counter words (int64 tensors) under a 64-bit ``key``.

    int64 products of two 32-bit words wrap modulo 2^64 and keep all 64 product bits."""
    c0, c1, c2, c3 = counter
    for k0, k1 in round_keys(key):
        p0, p1 = c0 * PHILOX_M0, c2 * PHILOX_M1
        c0, c1, c2, c3 = ((p1 >> 32) & MASK32) ^ c1 ^ k0, p1 & MASK32, ((p0 >> 32) & MASK32) ^ c3 ^ k1, p0 & MASK32
    return c0, c1, c2, c3


def philox_words(key: int, first: int, count: int) -> torch.Tensor:
    """The words of counters ``first .. first+count-1``: int64 tensor ``(count, 4)``."""
    j = torch.arange(first, first + count, dtype=torch.int64)
    zero = torch.zeros_like(j)
    return torch.stack(philox((j & MASK32, (j >> 32) & MASK32, zero, zero), key), dim=1)


def _f32(value: float) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float32)


def _log(u: torch.Tensor) -> torch.Tensor:
    """Natural log of positive normal float32 ``u`` (as :func:`philox_numba.log_f32` computes it)."""
    bits = u.view(torch.int32)
    exponent = (bits >> 23) - 127
    f = ((bits & 0x7FFFFF) | 0x3F800000).view(torch.float32)
    big = f > _f32(SQRT_HALF_MANTISSA)
    f = torch.where(big, f * _f32(0.5), f)
    exponent = exponent + big.to(torch.int32)
    s = (f - _f32(1.0)) / (f + _f32(1.0))
    s2 = s * s
    p = _f32(LOG_SERIES[0]) * s2 + _f32(LOG_SERIES[1])
    for c in LOG_SERIES[2:]:
        p = p * s2 + _f32(c)
    return (_f32(2.0) * s) * p + exponent.to(torch.float32) * _f32(LN2)


def box_muller(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float32 standard normals from 32-bit words ``a`` (radius) and ``b`` (angle), int64 tensors."""
    u = torch.clamp_max(a.to(torch.float32), _f32(U_MAX_WORD)) * _f32(TWO_M32) + _f32(TWO_M33)
    # torch's float32 sqrt is not always correctly rounded (vectorised libraries); the float64
    # root rounded to float32 is (53 >= 2 * 24 + 2 bits)
    r = torch.sqrt((_f32(-2.0) * _log(u)).double()).float()
    quadrant = b >> 30
    x = ((b & 0x3FFFFFFF).to(torch.float32) * _f32(TWO_M30) - _f32(0.5)) * _f32(HALF_PI)
    x2 = x * x
    ps = (_f32(SIN_POLY[0]) * x2 + _f32(SIN_POLY[1])) * x2 + _f32(SIN_POLY[2])
    sin = x + (x * x2) * ps
    pc = (_f32(COS_POLY[0]) * x2 + _f32(COS_POLY[1])) * x2 + _f32(COS_POLY[2])
    cos = (_f32(1.0) - _f32(0.5) * x2) + (x2 * x2) * pc
    swap = (quadrant & 1) == 1  # angle + q pi/2: (cos, sin) -> (-sin, cos) -> (-cos, -sin) -> (sin, -cos)
    c, s = torch.where(swap, sin, cos), torch.where(swap, cos, sin)
    c = torch.where(((quadrant + 1) >> 1) & 1 == 1, -c, c)
    s = torch.where(quadrant >> 1 == 1, -s, s)
    return r * c, r * s


def normal(key: int, numel: int) -> torch.Tensor:
    """``numel`` float32 standard normals of ``key`` (elements ``0 .. numel-1``)."""
    out = torch.empty(numel, dtype=torch.float32)
    group_size = 4 * GROUP_COUNTERS
    groups = -(-numel // group_size)
    for first in range(0, groups, CHUNK_GROUPS):
        count = min(CHUNK_GROUPS, groups - first)
        w = philox_words(key, first * GROUP_COUNTERS, count * GROUP_COUNTERS).view(count, GROUP_COUNTERS, 4)
        z0, z1 = box_muller(w[:, :, 0], w[:, :, 1])
        z2, z3 = box_muller(w[:, :, 2], w[:, :, 3])
        z = torch.stack((z0, z1, z2, z3), dim=1).flatten()
        start = first * group_size
        n = min(count * group_size, numel - start)
        out[start : start + n] = z[:n]
    return out


def combine(y: torch.Tensor, z: torch.Tensor, sigma: float, multiplicative: bool) -> torch.Tensor:
    """``y + z sigma`` (or ``y + y (z sigma)``) in ``y``'s dtype, rounded step by step like the
    compiled fused kernels; ``z`` (float32) is overwritten when ``y`` is float32."""
    n = z.to(y.dtype).mul_(sigma)
    if multiplicative:
        n.mul_(y)
    return n.add_(y)
