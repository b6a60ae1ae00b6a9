"""Let numba's kernels use 512-bit vectors on CPUs that have them.

LLVM compiles for 256-bit vectors on AVX-512 CPUs unless told otherwise (the tuning feature
``prefer-256-bit``, a guard against the clock drop of early AVX-512 parts). The generator's
Philox rounds multiply 32-bit words into 64 bits, which AVX-512 does twice as wide: one
core of a Rocket Lake Xeon drew and added noise in 1.11 ns an element instead of 1.30 ns,
the same numbers bit for bit (the kernels are compiled without fast-math, so the vector
width cannot change a result).

numba reads its target once, when it is first imported, from ``NUMBA_CPU_FEATURES``; so
this runs before that import, and leaves a target the user chose alone.
"""

from __future__ import annotations

import os
import sys

NO_WIDE_VECTORS = "-prefer-256-bit"


def prefer_wide_vectors() -> bool:
    """Ask numba for 512-bit vectors where the CPU has AVX-512; True when asked.

    Does nothing once numba is imported, where ``NUMBA_CPU_FEATURES`` or ``NUMBA_CPU_NAME``
    is set, or where the CPU lacks AVX-512.
    """
    if "numba" in sys.modules or "NUMBA_CPU_FEATURES" in os.environ or "NUMBA_CPU_NAME" in os.environ:
        return False
    try:
        import llvmlite.binding as llvm  # type: ignore[import-untyped]

        features = llvm.get_host_cpu_features()
    except (ImportError, RuntimeError, OSError):  # no llvmlite, or a host it cannot read
        return False
    if not features.get("avx512f"):
        return False
    os.environ["NUMBA_CPU_FEATURES"] = f"{features.flatten()},{NO_WIDE_VECTORS}"
    return True
