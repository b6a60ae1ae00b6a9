"""benchmarks/validate_profiles.py: float and NIT accuracy per profile, the gap flagged, resumable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_validation_reports_each_profile_against_float_and_resumes(tmp_path: Path) -> None:
    args = [
        sys.executable, str(ROOT / "benchmarks" / "validate_profiles.py"), "--dataset", "synthetic", "--model", "lenet5",
        "--all-data", "--epochs", "1", "--seeds", "2", "--chips", "2", "--width", "0.5",
        "--profile", "gaussian-additive", "--profile", "rram-hfox", "--max-gap", "0.02",
        "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert [r["profile"] for r in report["profiles"]] == ["gaussian-additive", "rram-hfox"]
    for row in report["profiles"]:
        seeds = [p["mean"] for p in row["per_seed"]]
        assert len(seeds) == 2 and row["nit_accuracy"] == pytest.approx(sum(seeds) / 2)
        low, high = row["nit_interval_over_seeds"]
        assert low <= row["nit_accuracy"] <= high
        assert row["gap_points"] == pytest.approx(100 * (row["float_accuracy"] - row["nit_accuracy"]))
        assert row["within_max_gap"] == (row["gap_points"] <= 2.0)
    assert "reproduced:" in first.stdout and "training_seeds: 2" in first.stdout
    table = (tmp_path / "out" / "validation.md").read_text()
    assert "| gaussian-additive |" in table and "| rram-hfox |" in table
    # a second run trains nothing and measures nothing again: the same figures
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert (
        again.returncode == 0
        and json.loads((tmp_path / "out" / "validation.json").read_text())["profiles"] == (report["profiles"])
    )
    # --ablate: each flagged profile's NIT models again under its pieces; the whole profile
    # is the same evaluation as the main figure, so it comes from the store unchanged
    ablated = subprocess.run([*args, "--ablate", "--max-gap", "-1"], capture_output=True, text=True, timeout=600)
    assert ablated.returncode == 0, ablated.stderr[-2000:]
    rows = json.loads((tmp_path / "out" / "validation.json").read_text())["profiles"]
    for row in rows:
        whole = row["pieces"][0]
        assert whole["piece"] == "full profile" and whole["accuracy"] == pytest.approx(row["nit_accuracy"])
        assert all(len(p["per_seed"]) == 2 for p in row["pieces"])
    hfox = {p["piece"] for p in rows[1]["pieces"]}
    assert "periphery only (DAC, tiles, ADC)" in hfox and "noise only (no DAC, ADC, tiles)" in hfox
    assert "## Where the points go" in (tmp_path / "out" / "validation.md").read_text()
    # --recalibrate-bn: recorded with the figures; LeNet-5 has no batch norm, so the chips'
    # accuracies are those measured without it (other results, as the flag is in their key)
    recalibrated = subprocess.run([*args, "--recalibrate-bn"], capture_output=True, text=True, timeout=600)
    assert recalibrated.returncode == 0, recalibrated.stderr[-2000:]
    again = json.loads((tmp_path / "out" / "validation.json").read_text())
    assert again["recalibrate_bn"] and "batch norm re-estimated on each chip" in again["conditions"]
    assert [r["nit_accuracy"] for r in again["profiles"]] == pytest.approx(
        [r["nit_accuracy"] for r in report["profiles"]]
    )
