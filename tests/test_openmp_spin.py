"""hwprofiles shortens the spin of torch's idle OpenMP threads when it is imported first,
and never over a setting of the user's or after torch has loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hwprofiles import openmp_spin


def _spin_after(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in openmp_spin.OPENMP_SETTINGS}
    out = subprocess.run(
        [sys.executable, "-c", code + "; import os; print(os.environ.get('GOMP_SPINCOUNT'))"],
        capture_output=True,
        text=True,
        check=True,
        env=clean | env,
    )
    return out.stdout.strip().splitlines()[-1]


def test_importing_hwprofiles_before_torch_shortens_the_spin():
    assert _spin_after("import hwprofiles, torch") == openmp_spin.SPIN_COUNT


def test_a_process_that_loaded_torch_first_is_left_alone():
    assert _spin_after("import torch, hwprofiles") == "None"


@pytest.mark.parametrize(
    ("name", "value", "expected"), [("GOMP_SPINCOUNT", "77", "77"), ("OMP_WAIT_POLICY", "active", "None")]
)
def test_the_users_own_openmp_setting_is_kept(name, value, expected):
    assert _spin_after("import hwprofiles, torch", **{name: value}) == expected
