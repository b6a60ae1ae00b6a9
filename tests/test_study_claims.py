"""benchmarks/study_claims.py: the study's verdicts over training seeds, and the study run
with several seeds end to end (benchmarks/reproduce_study.py on synthetic data)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import study_claims as sc  # noqa: E402


def model(mid: float | None, acc: float = 0.9, grid: float = 0.5, curve: list[float] | None = None) -> dict[str, Any]:
    points = curve or [acc, 0.5, 0.1]
    return {
        "noise_free_accuracy": acc,
        "peak_accuracy": acc,
        "midpoint_sigma": mid,
        "mean_accuracy_over_grid": grid,
        "curve": [
            {"sigma": s, "mean": m, "ci_low": m - 0.01, "ci_high": m + 0.01, "std": 0.01, "n": 5}
            for s, m in zip([0.1, 1.0, 10.0], points)
        ],
    }


def arch(seeds: dict[int, dict[str, dict[str, Any]]], extra: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"seeds": {str(k): {"models": v, **(extra or {}).get(k, {})} for k, v in seeds.items()}}


def test_interval_is_the_student_t_interval_of_the_seed_means() -> None:
    values = [0.81, 0.84, 0.86]
    iv = sc.interval(values)
    low, high = stats.t.interval(0.95, 2, loc=sum(values) / 3, scale=stats.sem(values))
    assert iv is not None and iv["n"] == 3
    assert iv["ci_low"] == pytest.approx(low) and iv["ci_high"] == pytest.approx(high)
    one = sc.interval([0.5])
    assert one == {"mean": 0.5, "std": 0.0, "ci_low": 0.5, "ci_high": 0.5, "n": 1}
    assert sc.interval([]) is None
    clipped = sc.accuracy_interval([0.2, 0.9])
    assert clipped is not None and clipped["ci_low"] == 0.0 and clipped["ci_high"] == 1.0
    # A transfer efficiency is a ratio of accuracies: never below 0, free to exceed 1.
    ratio = sc.efficiency_interval([0.4, 1.5])
    assert ratio is not None and ratio["ci_low"] == 0.0 and ratio["ci_high"] > 1.5


def test_midpoints_are_averaged_on_a_log_scale() -> None:
    iv = sc.log_interval([0.1, 1.0, 10.0])
    assert iv is not None and iv["mean"] == pytest.approx(1.0)
    assert iv["ci_low"] * iv["ci_high"] == pytest.approx(1.0)  # symmetric in log10


@pytest.mark.parametrize(
    ("values", "threshold", "verdict"),
    [
        ([0.3, 0.32, 0.31], 0.0, "held"),
        ([-0.3, -0.32, -0.31], 0.0, "did NOT hold"),
        ([-0.3, 0.4, 0.1], 0.0, "within noise"),
        ([0.48, 0.5, 0.52], 0.4, "held"),
        ([0.35, 0.5, 0.6], 0.4, "within noise"),
        ([0.2], 0.0, "held (one seed"),
    ],
)
def test_a_verdict_needs_the_whole_interval_on_one_side(values: list[float], threshold: float, verdict: str) -> None:
    assert sc.judge(sc.interval(values), threshold).startswith(verdict)


def test_claim1_is_judged_for_every_qat_setting_paired_by_seed() -> None:
    # Clean's midpoint swings from seed to seed; "qat a=4" is 2x clean's in every seed (held),
    # "qat a=1" half of it (QAT worse), "qat a=64" above in one seed and below in two.
    clean = {0: 0.4, 1: 0.6, 2: 0.5}
    factors = {"qat a=4": [2.0, 2.1, 1.9], "qat a=1": [0.5, 0.52, 0.48], "qat a=64": [3.0, 0.5, 0.6]}
    seeds = {s: {"clean": model(clean[s]), **{k: model(clean[s] * f[s]) for k, f in factors.items()}} for s in range(3)}
    seeds[2]["qat a=512"] = model(None, acc=0.1)  # did not learn in one seed
    seeds[0]["qat a=512"] = seeds[1]["qat a=512"] = model(0.9)
    out = sc.claim1(arch(seeds))
    per = out["per_qat_model"]
    assert per["qat a=4"]["verdict"] == "held"
    assert per["qat a=4"]["log10_ratio"]["ratio"] == pytest.approx((2.0 * 2.1 * 1.9) ** (1 / 3))
    assert per["qat a=1"]["verdict"] == "did NOT hold"
    assert per["qat a=64"]["verdict"].startswith("within noise")
    assert per["qat a=512"]["verdict"] == "did not learn in 1 seed(s)"
    assert out["held_at"] == ["qat a=4"] and out["reversed_at"] == ["qat a=1"]
    assert out["verdict"].startswith("held at qat a=4") and "QAT worse at qat a=1" in out["verdict"]
    assert "not judged where seeds did not learn: qat a=512 (1 of 3)" in out["verdict"]


def test_the_qat_model_of_claims_1_and_2_is_chosen_over_all_seeds() -> None:
    # Seed 0 alone would pick "qat a=1"; over the three seeds "qat a=4" is better on average.
    grid = {"qat a=1": [0.8, 0.3, 0.3], "qat a=4": [0.7, 0.6, 0.6]}
    seeds = {s: {k: model(1.0, grid=v[s]) for k, v in grid.items()} for s in range(3)}
    assert sc.best_qat(arch(seeds)["seeds"]) == "qat a=4"
    seeds[1].pop("qat a=4")  # a setting missing in one seed is not chosen
    assert sc.best_qat(arch(seeds)["seeds"]) == "qat a=1"


def test_claim2_uses_the_nit_model_trained_at_each_seeds_qat_midpoint() -> None:
    extra = {
        s: {
            "nit_vs_qat": {
                "relative_error_reduction": r + 0.1,  # the best NIT model, chosen after the fact
                "best_nit": "nit sigma=1",
                "relative_error_reduction_each": {sc.NIT_AT_QAT_MIDPOINT: r, "nit sigma=1": r + 0.1},
            }
        }
        for s, r in enumerate([0.30, 0.35, 0.32])
    }
    seeds = {s: {"clean": model(0.5)} for s in range(3)}
    out = sc.claim2({**arch(seeds, extra), "arch": "resnet20"})
    assert out["error_reduction_nit_at_qat_midpoint"]["mean"] == pytest.approx(0.3233333)
    assert out["error_reduction_best_nit"]["mean"] == pytest.approx(0.4233333)
    assert out["verdict"] == "held" and out["deep"]


def test_most_on_deep_nets_needs_disjoint_intervals() -> None:
    def entry(values: list[float]) -> dict[str, Any]:
        return {"error_reduction_nit_at_qat_midpoint": sc.interval(values)}

    held = sc.deep_vs_shallow({"lenet5": entry([0.1, 0.12, 0.11]), "resnet20": entry([0.5, 0.52, 0.51])})
    assert held["verdict"] == "held" and held["over_40_percent"]["resnet20"] == "held"
    overlap = sc.deep_vs_shallow({"lenet5": entry([0.1, 0.4, 0.2]), "resnet20": entry([0.2, 0.5, 0.35])})
    assert overlap["verdict"].startswith("within noise")
    reversed_ = sc.deep_vs_shallow({"lenet5": entry([0.5, 0.52, 0.51]), "resnet20": entry([0.1, 0.12, 0.11])})
    assert reversed_["verdict"] == "did NOT hold"
    assert sc.deep_vs_shallow({"resnet20": entry([0.5, 0.6])})["verdict"].startswith("n/a")


def matrix(eff: dict[tuple[str, str], float], cols: tuple[str, ...] = ("a", "b", "stress")) -> dict[str, Any]:
    rows = ["clean", *(f"nit:{c}" for c in cols if c != "stress"), "nit:all"]
    return {
        "rows": rows,
        "cols": cols,
        "accuracy": {f"{r} | {c}": {"mean": eff.get((r, c), 1.0) * 0.8} for r in rows for c in cols},
        "transfer_efficiency": [[eff.get((r, c), 1.0) for c in cols] for r in rows],
    }


def test_claim3_takes_single_profile_nit_rows_off_the_diagonal() -> None:
    seeds = {
        "0": matrix({("nit:a", "b"): 0.95, ("nit:b", "stress"): 0.5, ("nit:all", "a"): 0.7, ("clean", "a"): 0.1}),
        "1": matrix({("nit:a", "b"): 0.949, ("nit:b", "stress"): 0.6, ("nit:all", "a"): 0.8, ("clean", "a"): 0.1}),
    }
    out = sc.transfer_over_seeds(seeds, stress={"stress"})
    # clean and nit:all rows are not claim 3's; the stress column is judged apart.
    assert out["claim3_worst"]["mean"] == pytest.approx(0.55)
    assert out["claim3_worst"]["where"] == ["nit:b under stress"] * 2
    assert out["claim3_worst_without_stress"]["mean"] == pytest.approx(0.9495)
    assert out["claim3_verdict_without_stress"] == "held"
    assert out["many_profile"]["nit:all"]["worst"]["mean"] == pytest.approx(0.75)
    assert out["transfer_efficiency"]["nit:a | b"]["mean"] == pytest.approx(0.9495)


def test_reports_written_before_seeds_read_as_one_seed() -> None:
    old = {"models": {"clean": model(0.5), "nit sigma=0.6": model(1.0)}, "nit_at_qat_midpoint": "nit sigma=0.6"}
    seeds = sc.seed_entries(old)
    assert list(seeds) == ["0"]
    assert seeds["0"]["models"][sc.NIT_AT_QAT_MIDPOINT] is old["models"]["nit sigma=0.6"]
    agg = sc.over_seeds(old)
    assert agg["clean"]["midpoint_sigma"]["mean"] == pytest.approx(0.5) and agg["clean"]["seeds"] == 1


def test_curves_over_seeds_average_each_point() -> None:
    seeds = {s: {"clean": model(0.5, curve=[0.9, 0.4 + 0.1 * s, 0.1])} for s in range(3)}
    curve = sc.over_seeds(arch(seeds))["clean"]["curve"]
    assert [p["sigma"] for p in curve] == [0.1, 1.0, 10.0]
    assert curve[1]["mean"] == pytest.approx(0.5) and curve[1]["n"] == 3
    assert curve[1]["chip_ci_half_width"] == pytest.approx(0.01)


@pytest.mark.slow
def test_the_study_runs_every_configuration_for_every_seed_and_resumes(tmp_path: Path) -> None:
    args = [
        sys.executable, str(ROOT / "benchmarks" / "reproduce_study.py"), "--budget", "tiny", "--dataset", "synthetic",
        "--train-subset", "400", "--test-subset", "100", "--archs", "lenet5", "--seeds", "0,1", "--samples", "2",
        "--epochs", "4", "--only", "sweeps", "--no-progress",
        "--work-dir", str(tmp_path / "work"), "--output-dir", str(tmp_path / "out"),
    ]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "study.json").read_text())
    entry = report["architectures"]["lenet5"]
    assert sorted(entry["seeds"]) == ["0", "1"]
    assert report["budget"]["seeds"] == [0, 1]
    for label, agg in entry["over_seeds"].items():
        runs = [e["models"][label] for e in entry["seeds"].values() if label in e["models"]]
        good = [m for m in runs if sc.learned(m)]
        if good:
            assert agg["noise_free_accuracy"]["mean"] == pytest.approx(
                sum(m["noise_free_accuracy"] for m in good) / len(good)
            )
    seed_configs = {e["models"]["clean"]["config"]["seed"] for e in entry["seeds"].values()}
    assert seed_configs == {0, 1}  # each seed trained its own model
    assert (tmp_path / "out" / "lenet5.png").stat().st_size > 0
    assert "## The claims" in (tmp_path / "out" / "study.md").read_text()

    # A run of one seed (as a study run in parts does) keeps the other seeds in the report.
    one_seed = [*args[: args.index("0,1")], "1", *args[args.index("0,1") + 1 :]]
    second = subprocess.run(one_seed, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "] training " not in second.stdout and second.stdout.count("reusing") >= 4
    assert "0 chip instances measured" in second.stdout  # every point read back from the results store
    again = json.loads((tmp_path / "out" / "study.json").read_text())["architectures"]["lenet5"]
    assert sorted(again["seeds"]) == ["0", "1"]
    assert again["over_seeds"] == entry["over_seeds"] and again["best_qat"] == entry["best_qat"]
    assert "training seeds [0, 1]" in (tmp_path / "out" / "study.md").read_text()
    # Its regenerate command measures every seed the entry holds, not only the one this run added.
    assert again["regenerate"].split("--seeds ")[1].startswith("0,1 ")
    assert not math.isnan(again["over_seeds"]["clean"]["noise_free_accuracy"]["mean"])


def test_a_regenerate_command_names_the_seeds_unless_they_are_the_budgets() -> None:
    import reproduce_study as rs

    cmd = "python benchmarks/reproduce_study.py --budget medium --seeds 2 --archs resnet20 --only transfer"
    assert rs.with_seeds(cmd, [0, 1, 2], default=[0, 1, 2]) == cmd.replace("--seeds 2 ", "")
    assert rs.with_seeds(cmd, [2, 0], default=[0, 1, 2]) == cmd.replace("--seeds 2", "--seeds 0,2")
    plain = cmd.replace("--seeds 2 ", "")
    assert rs.with_seeds(plain, [1], default=[0]) == plain.replace("medium", "medium --seeds 1")


def test_a_report_rerun_judges_claim3_with_the_profiles_marked_stress_now(tmp_path: Path) -> None:
    import reproduce_study as rs

    cols = ("gaussian-additive", "photonic-ptc-4bit")
    seeds = {"0": matrix({("nit:gaussian-additive", "photonic-ptc-4bit"): 0.5}, cols)}
    stale = {
        "seeds": seeds,
        "over_seeds": sc.transfer_over_seeds(seeds, stress=set()),
        "regenerate": "python benchmarks/reproduce_study.py --budget tiny --seeds 3 --archs lenet5 --only transfer",
        "width": 1.0,
        "recalibrate_bn": True,
    }
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "study.json").write_text(json.dumps({"architectures": {}, "transfer": {"lenet5": stale}}))
    argv = ["--budget", "tiny", "--only", "report", "--no-progress", "--transfer-profiles", ",".join(cols)]
    argv += ["--work-dir", str(tmp_path / "work"), "--output-dir", str(tmp_path / "out")]
    assert rs.main(argv) == 0
    rerun = json.loads((tmp_path / "out" / "study.json").read_text())["transfer"]["lenet5"]
    assert "--seeds" not in rerun["regenerate"]  # it holds seed 0, the budget's own
    o = rerun["over_seeds"]
    assert o["stress_profiles"] == ["photonic-ptc-4bit"]  # marked stress in its profile file
    assert o["claim3_worst"]["mean"] == pytest.approx(0.5)
    assert o["claim3_worst_without_stress"]["mean"] == pytest.approx(1.0)
    assert "Batch norm re-estimated on every chip" in (tmp_path / "out" / "study.md").read_text()


def test_a_run_of_some_seeds_keeps_the_seeds_earlier_runs_measured_under_the_same_settings(tmp_path: Path) -> None:
    import reproduce_study as rs

    settings = {"width": 0.5, "epochs": 3, "test_images": 2000, "samples": 5, "recalibrate_bn": True}
    earlier = {**settings, "seeds": {"0": matrix({}), "1": matrix({})}}
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "study.json").write_text(json.dumps({"transfer": {"resnet20": earlier}}))
    argv = ["--budget", "tiny", "--work-dir", str(tmp_path / "work"), "--output-dir", str(tmp_path / "out")]
    study = rs.Study(rs.parse_args(argv), rs.Console())
    # Running seed 1 again replaces it; seed 0 stays.
    assert list(study.earlier_seeds("transfer", "resnet20", settings, running=[1, 2])) == ["0"]
    # Measured otherwise (here without batch-norm recalibration): nothing is mixed in.
    other = {**settings, "recalibrate_bn": False}
    assert study.earlier_seeds("transfer", "resnet20", other, running=[2]) == {}
    assert study.earlier_seeds("transfer", "lenet5", settings, running=[0]) == {}
