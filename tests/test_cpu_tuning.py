"""hwprofiles shortens the spin of torch's idle OpenMP threads when it is imported first, and
asks numba for wide vectors on AVX-512; never over a setting of the user's or after the library
in question has loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hwprofiles import cpu_tuning


def _spin_after(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in cpu_tuning.OPENMP_SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", code + "; import os; print(os.environ.get('GOMP_SPINCOUNT'))"],
        capture_output=True,
        text=True,
        check=True,
        env=clean | env,
    )
    return out.stdout.strip().splitlines()[-1]


def test_importing_hwprofiles_before_torch_shortens_the_spin():
    assert _spin_after("import hwprofiles, torch") == cpu_tuning.SPIN_COUNT


def test_a_process_that_loaded_torch_first_is_left_alone():
    assert _spin_after("import torch, hwprofiles") == "None"


@pytest.mark.parametrize(
    ("name", "value", "expected"), [("GOMP_SPINCOUNT", "77", "77"), ("OMP_WAIT_POLICY", "active", "None")]
)
def test_the_users_own_openmp_setting_is_kept(name, value, expected):
    assert _spin_after("import hwprofiles, torch", **{name: value}) == expected


class _Features(dict):
    def flatten(self) -> str:
        return ",".join(("+" if on else "-") + name for name, on in self.items())


@pytest.mark.parametrize(
    ("host", "env", "asked"),
    [
        ({"avx2": True, "avx512f": True}, {}, True),
        ({"avx2": True, "avx512f": False}, {}, False),
        ({"avx2": True, "avx512f": True}, {"NUMBA_CPU_FEATURES": "+avx2"}, False),  # the user's target stays
        ({"avx2": True, "avx512f": True}, {"NUMBA_CPU_NAME": "generic"}, False),
    ],
)
def test_numba_is_asked_for_wide_vectors_only_on_avx512_and_never_over_the_users_target(monkeypatch, host, env, asked):
    llvm = pytest.importorskip("llvmlite.binding")
    from hwprofiles import cpu_tuning

    monkeypatch.delitem(sys.modules, "numba", raising=False)  # as before numba's first import
    for name in ("NUMBA_CPU_FEATURES", "NUMBA_CPU_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(llvm, "get_host_cpu_features", lambda: _Features(host))
    assert cpu_tuning.prefer_wide_vectors() is asked
    expected = _Features(host).flatten() + "," + cpu_tuning.NO_WIDE_VECTORS if asked else env.get("NUMBA_CPU_FEATURES")
    assert os.environ.get("NUMBA_CPU_FEATURES") == expected
