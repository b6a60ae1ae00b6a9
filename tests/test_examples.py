"""Every script in examples/ runs, in its tiny mode, and produces what its docstring promises.

The scripts are found by glob, so a new example is run without touching this file; each
must take ``--tiny`` and ``--out``, say in its docstring how to run it on real data, and be
listed in examples/README.md. What each one should write is checked below by its name.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import hwprofiles

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
SRC = Path(hwprofiles.__file__).resolve().parents[1]  # the package under test, for the scripts too


def run_example(script: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWPROFILES_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
        XDG_CONFIG_HOME=str(out.parent / "config"),  # a user profile folder of its own
        MPLBACKEND="Agg",
    )
    return subprocess.run(
        [sys.executable, str(script), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=out.parent,
        timeout=600,
    )


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def is_summary(cell: dict, n: int | None = None) -> bool:
    return 0 <= cell["ci_low"] <= cell["mean"] <= cell["ci_high"] <= 1 and (n is None or cell.get("n", n) == n)


def check_harden(out: Path, stdout: str) -> None:
    data = results(out)
    assert data["profile"] == "pcm-joshi2020" and data["samples"] == 2
    assert is_summary(data["clean-trained"], 2) and is_summary(data["hardened"], 2)
    assert "hardened under pcm-joshi2020" in stdout


def check_state_dict(out: Path, stdout: str) -> None:
    import torch

    data = results(out)
    assert set(data["profiles"]) == {"ideal", "pcm-joshi2020", "rram-neurram", "photonic-mzi"}
    assert all(is_summary(cell) for cell in data["profiles"].values())
    ideal = data["profiles"]["ideal"]
    assert ideal["ci_low"] == ideal["mean"] == ideal["ci_high"]  # no noise: every chip alike
    weights = torch.load(out / "lenet5-state_dict.pt", weights_only=True)
    hwprofiles.get_model("lenet5", in_channels=1, num_classes=10).load_state_dict(weights)


def check_fit(out: Path, stdout: str) -> None:
    from hwprofiles.cli import main

    profile_file = out / "lab-pcm.yaml"
    assert main(["profiles", "validate", str(profile_file)]) == 0
    profile = hwprofiles.load_profile(profile_file)
    assert profile.name == "lab-pcm" and profile.kinds() == ["pcm_programming", "pcm_drift"]
    programming, drift = profile.noise
    # the data were drawn from known values: the fit finds them (seeded, so this is exact to repeat)
    assert programming.coefficients_us == pytest.approx((0.26, 1.97, -1.17), abs=0.3)
    assert drift.nu_mean == pytest.approx(0.05, abs=0.005) and drift.nu_std == pytest.approx(0.01, abs=0.003)
    assert (out / "lab-pcm-fit.png").stat().st_size > 0


def check_transformer(out: Path, stdout: str) -> None:
    data = results(out)
    for name in ("clean-trained", "nit-finetuned"):
        assert is_summary(data[name]) and 0 <= data[name]["float"] <= 1
    assert "NoisyMultiheadAttention" in stdout  # the attention projections were converted


def check_drift(out: Path, stdout: str) -> None:
    data = results(out)
    times = data["times_s"]
    assert times == sorted(times) and times[0] == 1 and times[-1] == 365 * 86_400
    for name in ("compensated", "uncompensated"):
        assert len(data[name]) == len(times) and all(is_summary(cell) for cell in data[name])
    # a year of uncompensated decay costs accuracy that the global compensation keeps
    assert data["uncompensated"][-1]["mean"] < data["compensated"][-1]["mean"]
    assert "1 year" in stdout and (out / "drift.png").stat().st_size > 0


def check_aihwkit(out: Path, stdout: str) -> None:
    from hwprofiles.aihwkit_bridge import from_aihwkit

    exported = json.loads((out / "pcm-joshi2020.aihwkit.json").read_text())
    again = from_aihwkit(exported, name="round-trip").profile
    assert again.kinds() == hwprofiles.load_profile("pcm-joshi2020").kinds()
    imported = hwprofiles.load_profile(out / "lab-pcm-aihwkit.yaml")
    assert imported.kinds() == from_aihwkit(json.loads((out / "rpu_config.json").read_text()), name="x").profile.kinds()
    data = results(out)
    assert is_summary(data["hwprofiles"], 2) and data["notes"]
    try:
        import aihwkit  # noqa: F401
    except ImportError:
        assert data["aihwkit"] is None and "aihwkit is not installed" in stdout
    else:
        assert len(data["aihwkit"]["accuracies"]) == 2


CHECKS: dict[str, Callable[[Path, str], None]] = {
    "01_harden_torchvision_model": check_harden,
    "02_evaluate_state_dict": check_state_dict,
    "03_fit_profile_from_measurements": check_fit,
    "04_transformer_under_pcm": check_transformer,
    "05_drift_over_a_year": check_drift,
    "06_compare_with_aihwkit": check_aihwkit,
}


def test_there_are_examples_and_each_has_its_check() -> None:
    assert EXAMPLES, f"no examples in {EXAMPLES_DIR}"
    assert sorted(CHECKS) == [p.stem for p in EXAMPLES], "give a new example its check in CHECKS"


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_each_example_says_how_to_run_it_and_is_listed(script: Path) -> None:
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
    assert "--tiny" in doc, "the docstring shows the tiny run"
    assert "fashion-mnist" in doc.lower() or "--csv" in doc, "the docstring says how to run it on real data"
    assert f"`{script.name}`" in (EXAMPLES_DIR / "README.md").read_text(encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_each_example_runs_on_tiny_data(script: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_example(script, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    CHECKS[script.stem](out, proc.stdout)
