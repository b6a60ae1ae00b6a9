"""Shorten how long torch's idle OpenMP threads spin, so the engine's noise threads get the cores.

After each parallel torch op (a convolution, a matmul), GNU OpenMP keeps its worker threads
spinning for ``GOMP_SPINCOUNT`` iterations (300,000 unless set) before they sleep. The
engine draws noise between those ops on threads of its own (numba kernels on
:func:`hwprofiles.noise.rng.in_parallel`), which then share the cores with spinning threads:
on a 2-core machine a ResNet-20 forward under ``gaussian-additive`` spent 170 ms drawing
instead of 115 ms. With 10,000 spins the same forward took 232-256 ms instead of 305-317 ms
and the clean forward was unchanged within noise (121-144 ms against 136-141 ms).

libgomp reads the setting once, when torch is first imported; so this runs when hwprofiles
is imported before torch, and leaves alone a process where torch is already loaded or the
user set ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``. (Import hwprofiles first, or set
``GOMP_SPINCOUNT=10000`` yourself, to get it in a script that imports torch first.)
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
