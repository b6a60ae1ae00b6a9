"""Fixtures shared by the tests: a clean plugin state and ways to run the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ENV_PREFIX = "HWPROFILES_"


@pytest.fixture
def clean_hwprofiles(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No HWPROFILES_* variables, and plugins, kinds and profile dirs loaded afresh.

    Use it in any test that changes the environment, registers kinds, adds
    profile directories or installs fake plugins; the state is reset again after.
    The user profile directory points into an empty temporary folder, so profiles a
    developer imported never reach the tests.
    """
    from hwprofiles.plugins import reset_plugin_manager

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def cli(clean_hwprofiles: None) -> Callable[..., Any]:
    """Run ``hwprofiles ARGS...`` in this process; returns typer's ``Result``.

    ``result.stdout`` and ``result.stderr`` are kept apart. Keyword ``env`` sets
    environment variables for the call.
    """
    from typer.testing import CliRunner

    from hwprofiles.cli import app
    from hwprofiles.plugins import reset_plugin_manager

    runner = CliRunner()

    def run(*args: str | Path, env: dict[str, str] | None = None) -> Any:
        reset_plugin_manager()  # each call starts like a new process
        return runner.invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)

    return run


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without HWPROFILES_* variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.update(extra)
    return env


@pytest.fixture
def subprocess_env() -> Callable[..., dict[str, str]]:
    """``subprocess_env(**extra)``: the environment without HWPROFILES_* variables, plus ``extra``."""
    return clean_env


@pytest.fixture
def run_module() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m hwprofiles ARGS...`` in a fresh interpreter (keyword ``env`` adds variables)."""

    def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hwprofiles", *[str(a) for a in args]],
            capture_output=True,
            text=True,
            env=clean_env(**(env or {})),
            timeout=120,
        )

    return run


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test on one torch thread (restored after): small tensors gain nothing from a
    thread pool, and on a loaded CPU its overhead dominates."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def synthetic() -> Any:
    """The synthetic dataset (seed 0): 512 training and 256 test images, 10 classes, in memory."""
    from hwprofiles.data import load_dataset

    return load_dataset("synthetic", seed=0)


@pytest.fixture(scope="session")
def loaders(synthetic: Any) -> Any:
    """Unshuffled loaders of :func:`synthetic`, batches of 128."""
    from hwprofiles.data import make_loaders

    return make_loaders(synthetic, 128, seed=0, shuffle=False)
