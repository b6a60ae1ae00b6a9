"""The generator of :mod:`hwprofiles.noise.philox`, compiled by numba and vectorised.

Imported only when a CPU draw first needs it (numba is a dependency; the torch version
stands in where it cannot be imported). The same IEEE single-precision steps in the same order as the torch version, compiled without
fast-math (no reassociation, no fused multiply-add), so the numbers are bit-identical; numba's
``error_model="numpy"`` drops the division-by-zero checks that would stop LLVM vectorising.

Work goes in blocks of :data:`BLOCK` counters: Philox words into a small buffer, Box-Muller
pairs into a second one (both stay in the L1 cache), then one pass that writes (or adds into)
the output. Functions release the GIL, so :mod:`hwprofiles.noise.rng` runs disjoint ranges
of one draw on several threads.
"""

from __future__ import annotations

from hwprofiles.cpu_tuning import prefer_wide_vectors

prefer_wide_vectors()  # before numba's first import, which fixes its target

import numpy as np  # noqa: E402
from llvmlite import ir  # type: ignore[import-untyped]  # noqa: E402
from numba import njit, types  # noqa: E402
from numba.extending import intrinsic  # noqa: E402

from hwprofiles.noise import philox as spec  # noqa: E402

BLOCK = spec.GROUP_COUNTERS  # counters per block: one group of 4 * BLOCK elements
_F = np.float32
_I = np.int32
_U = np.uint64
_MASK = _U(spec.MASK32)
_jit = njit(nogil=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)
_inline = njit(inline="always", nogil=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False)


@intrinsic
def _float_bits(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_float(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@_inline
def _round(c0, c1, c2, c3, k0, k1):
    p0 = _U(spec.PHILOX_M0) * c0
    p1 = _U(spec.PHILOX_M1) * c2
    return (p1 >> _U(32)) ^ c1 ^ k0, p1 & _MASK, (p0 >> _U(32)) ^ c3 ^ k1, p0 & _MASK


@_jit
def _philox_block(words, keys, first, count):
    """Philox4x32-10 of counters ``first + j`` (``j < count``): word ``q`` into ``words[q * BLOCK + j]``."""
    # The round keys as locals, masked to 32 bits: loaded once (not after every store into
    # ``words``), and LLVM then knows every word stays below 2^32 and multiplies with vpmuludq.
    a0, b0, a1, b1, a2 = keys[0] & _MASK, keys[1] & _MASK, keys[2] & _MASK, keys[3] & _MASK, keys[4] & _MASK
    b2, a3, b3, a4, b4 = keys[5] & _MASK, keys[6] & _MASK, keys[7] & _MASK, keys[8] & _MASK, keys[9] & _MASK
    a5, b5, a6, b6, a7 = keys[10] & _MASK, keys[11] & _MASK, keys[12] & _MASK, keys[13] & _MASK, keys[14] & _MASK
    b7, a8, b8, a9, b9 = keys[15] & _MASK, keys[16] & _MASK, keys[17] & _MASK, keys[18] & _MASK, keys[19] & _MASK
    for j in range(count):
        c = _U(first) + _U(j)
        c0, c1, c2, c3 = c & _MASK, c >> _U(32), _U(0), _U(0)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a0, b0)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a1, b1)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a2, b2)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a3, b3)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a4, b4)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a5, b5)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a6, b6)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a7, b7)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a8, b8)
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, a9, b9)
        words[_U(j)] = np.uint32(c0)
        words[_U(BLOCK + j)] = np.uint32(c1)
        words[_U(2 * BLOCK + j)] = np.uint32(c2)
        words[_U(3 * BLOCK + j)] = np.uint32(c3)


@_inline
def _log(u):
    bits = _float_bits(u)
    exponent = (bits >> _I(23)) - _I(127)
    f = _bits_float((bits & _I(0x7FFFFF)) | _I(0x3F800000))
    big = f > _F(spec.SQRT_HALF_MANTISSA)
    f = _F(f * _F(0.5)) if big else f
    exponent = exponent + (_I(1) if big else _I(0))
    s = _F(_F(f - _F(1.0)) / _F(f + _F(1.0)))
    s2 = _F(s * s)
    p = _F(_F(_F(spec.LOG_SERIES[0]) * s2) + _F(spec.LOG_SERIES[1]))
    p = _F(_F(p * s2) + _F(spec.LOG_SERIES[2]))
    p = _F(_F(p * s2) + _F(spec.LOG_SERIES[3]))
    p = _F(_F(p * s2) + _F(spec.LOG_SERIES[4]))
    return _F(_F(_F(_F(2.0) * s) * p) + _F(_F(exponent) * _F(spec.LN2)))


@_jit
def _box_muller_block(radius_words, angle_words, z_cos, z_sin, pairs):
    """``z_cos[p], z_sin[p]`` from ``radius_words[p], angle_words[p]`` (see philox.box_muller)."""
    for p in range(pairs):
        a = np.int64(radius_words[_U(p)])
        b = np.int64(angle_words[_U(p)])
        u = _F(_F(min(_F(a), _F(spec.U_MAX_WORD)) * _F(spec.TWO_M32)) + _F(spec.TWO_M33))
        r = np.sqrt(_F(_F(-2.0) * _log(u)))
        quadrant = b >> np.int64(30)
        x = _F(_F(_F(_F(b & np.int64(0x3FFFFFFF)) * _F(spec.TWO_M30)) - _F(0.5)) * _F(spec.HALF_PI))
        x2 = _F(x * x)
        ps = _F(_F(_F(_F(_F(spec.SIN_POLY[0]) * x2) + _F(spec.SIN_POLY[1])) * x2) + _F(spec.SIN_POLY[2]))
        sin = _F(x + _F(_F(x * x2) * ps))
        pc = _F(_F(_F(_F(_F(spec.COS_POLY[0]) * x2) + _F(spec.COS_POLY[1])) * x2) + _F(spec.COS_POLY[2]))
        cos = _F(_F(_F(1.0) - _F(_F(0.5) * x2)) + _F(_F(x2 * x2) * pc))
        swap = (quadrant & np.int64(1)) == np.int64(1)
        c = sin if swap else cos
        s = cos if swap else sin
        c = -c if ((quadrant + np.int64(1)) >> np.int64(1)) & np.int64(1) == np.int64(1) else c
        s = -s if (quadrant >> np.int64(1)) == np.int64(1) else s
        z_cos[_U(p)] = _F(r * c)
        z_sin[_U(p)] = _F(r * s)


@_jit
def _fill(out, y, sigma, mode, keys, start, stop):
    """Elements ``start .. stop-1``: ``out = z`` (mode 0), ``y + z sigma`` (1) or ``y + y (z sigma)`` (2)."""
    words = np.empty(4 * BLOCK, np.uint32)
    z = np.empty(4 * BLOCK, np.float32)
    group = start // (4 * BLOCK)
    while 4 * BLOCK * group < stop:
        _philox_block(words, keys, group * BLOCK, BLOCK)
        _box_muller_block(words[:BLOCK], words[BLOCK : 2 * BLOCK], z[:BLOCK], z[BLOCK : 2 * BLOCK], BLOCK)
        _box_muller_block(
            words[2 * BLOCK : 3 * BLOCK], words[3 * BLOCK :], z[2 * BLOCK : 3 * BLOCK], z[3 * BLOCK :], BLOCK
        )
        base = 4 * BLOCK * group
        lo = max(start, base) - base
        hi = min(stop, base + 4 * BLOCK) - base
        if mode == 0:
            for i in range(lo, hi):
                out[_U(base + i)] = z[_U(i)]
        elif mode == 1:
            for i in range(lo, hi):
                out[_U(base + i)] = y[_U(base + i)] + z[_U(i)] * sigma
        else:
            for i in range(lo, hi):
                yi = y[_U(base + i)]
                out[_U(base + i)] = yi + yi * (z[_U(i)] * sigma)
        group += 1


def fill(out: np.ndarray, y: np.ndarray, sigma: float, mode: int, key: int, start: int, stop: int) -> None:
    """Write elements ``start .. stop-1`` of the draw of ``key`` into the flat array ``out``
    (mode 0), or combined with ``y`` (modes 1, 2; ``y`` has ``out``'s dtype and may be ``out``)."""
    keys = np.array([k for pair in spec.round_keys(key) for k in pair], dtype=np.uint64)
    _fill(out, y, out.dtype.type(sigma), mode, keys, start, stop)
