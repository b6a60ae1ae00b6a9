"""Settings that must be made before torch or numba loads, for the engine's CPU speed.

Each library reads its setting once, when first imported; so these run before that import,
and leave alone whatever the user set.

**OpenMP spin.** After each parallel torch op (a convolution, a matmul), GNU OpenMP keeps
its worker threads spinning for ``GOMP_SPINCOUNT`` iterations (300,000 unless set) before
they sleep. The engine draws noise between those ops on threads of its own (numba kernels
on :func:`hwprofiles.noise.rng.in_parallel`), which then share the cores with spinning
threads: on a 2-core machine a ResNet-20 forward under ``gaussian-additive`` spent 170 ms
drawing instead of 115 ms. With 10,000 spins the same forward took 232-256 ms instead of
305-317 ms and the clean forward was unchanged within noise (121-144 ms against 136-141
ms). :func:`shorten_openmp_spin` runs when hwprofiles is imported, which helps only where
torch is not loaded yet (import hwprofiles first, or set ``GOMP_SPINCOUNT=10000``
yourself), and never where the user set ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``.

**numba's vector width.** LLVM compiles for 256-bit vectors on AVX-512 CPUs unless told
otherwise (the tuning feature ``prefer-256-bit``, a guard against the clock drop of early
AVX-512 parts). The generator's Philox rounds multiply 32-bit words into 64 bits, which
AVX-512 does twice as wide: one core of a Rocket Lake Xeon drew and added noise in 1.11 ns
an element instead of 1.30 ns, the same numbers bit for bit (the kernels are compiled
without fast-math, so the vector width cannot change a result). :func:`prefer_wide_vectors`
runs before the numba kernels import numba, never over ``NUMBA_CPU_FEATURES`` or
``NUMBA_CPU_NAME``.
"""

from __future__ import annotations

import os
import sys

SPIN_COUNT = "10000"
OPENMP_SETTINGS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")


def shorten_openmp_spin() -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` before torch loads; True when set."""
    if "torch" in sys.modules or any(name in os.environ for name in OPENMP_SETTINGS):
        return False
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


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
