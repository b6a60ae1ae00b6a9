"""Every hook in ``hookspecs.py`` is exercised by at least one test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hwprofiles import hookspecs

HOOKS = sorted(
    name for name, value in vars(hookspecs).items() if name.startswith("hwprofiles_") and inspect.isfunction(value)
)
TESTS = Path(__file__).parent


def test_there_are_hooks() -> None:
    assert {"hwprofiles_register_noise_models", "hwprofiles_profile_paths"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_named_in_a_test(hook: str) -> None:
    files = [p for p in TESTS.rglob("test_*.py") if p.resolve() != Path(__file__).resolve()]
    naming = [p.relative_to(TESTS) for p in files if hook in p.read_text(encoding="utf-8")]
    assert naming, f"no test file names the hook {hook}; add a test that exercises it"
