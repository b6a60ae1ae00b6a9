"""Sweeps and transfer matrices (``eval/sweep.py``, ``eval/transfer.py``) on tiny models:
every point of a report is the evaluation it names, no model is dropped, a failure is
named, the midpoint and the transfer efficiencies are the numbers their definitions give,
and the files written hold what the report holds.

Models are built here (a planted two-layer solution, or random weights written as a
checkpoint); the only training is one tiny NIT run that ``run_transfer`` must do itself.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
import torch
from test_eval_grid import Broken, planted, task, write_checkpoint  # noqa: E402 - shared tiny models

import hwprofiles
from hwprofiles.errors import HwProfilesError
from hwprofiles.eval import chips
from hwprofiles.eval.chips import EvaluationResult, Summary, Trained, evaluate
from hwprofiles.eval.grid import GridStats
from hwprofiles.eval.sweep import (
    DRIFT_TIMES_S,
    SweepReport,
    log_grid,
    midpoint,
    run_sweep,
    sweep_layers,
    sweep_noise,
    sweep_points,
    sweep_time,
)
from hwprofiles.eval.transfer import TransferResult, matched_scale, run_transfer, train_on, transfer_configs
from hwprofiles.results import ResultsStore
from hwprofiles.train import TrainConfig

CALIBRATION = 4  # chips.CALIBRATION_BATCHES


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def trained(path: str = "planted.pt", model=None, **config) -> Trained:
    cfg = TrainConfig(**{"model": "planted", "dataset": "tiny", **config})
    return Trained(Path(path), cfg, model if model is not None else planted(), {})


LOADERS = (task(n=192, seed=1), task(n=192, seed=2))
TRAIN, TEST = LOADERS
CAL_INPUTS = [x for x, _ in TRAIN[:CALIBRATION]]


def evaluated(model, profile, **kwargs) -> tuple[float, ...]:
    """The accuracies ``hwprofiles.evaluate`` gives for the test data (reference for a report's points)."""
    return evaluate(model, TEST, profile, calibration=CAL_INPUTS, **kwargs).accuracies  # ignored where not needed


# -- log grids and midpoints ---------------------------------------------------------------------
def test_a_log_grid_is_even_in_log_and_refuses_bounds_it_cannot_log():
    assert log_grid() == pytest.approx([10 ** (-2 + k / 4) for k in range(17)])
    assert log_grid(0.1, 1000.0, 5) == pytest.approx([0.1, 1.0, 10.0, 100.0, 1000.0])
    assert log_grid(3.0, 30.0, 2) == pytest.approx([3.0, 30.0])
    assert log_grid(1e-3, 0.1, 3) == pytest.approx([1e-3, 1e-2, 0.1])  # a grid entirely below 1
    assert log_grid(0.5, 8.0, 1) == [0.5] and log_grid(0.5, 8.0, 0) == [0.5]
    for low, high in (
        (0.0, 1.0),
        (1.0, 0.0),
        (-1.0, 1.0),
        (1.0, -2.0),
        (math.inf, 1.0),
        (1.0, math.inf),
        (math.nan, 1.0),
        (1.0, math.nan),
    ):
        with pytest.raises(ValueError, match="a log grid needs finite bounds above 0"):
            log_grid(low, high)


def test_the_midpoint_crosses_the_half_level_in_log_scale():
    # half level 0.5; between 1 (0.9) and 100 (0.1) it lies halfway, i.e. at 10 in log scale
    assert midpoint([1.0, 100.0], [0.9, 0.1], clean=0.9, chance=0.1) == pytest.approx(10.0)
    # a quarter of the way from 0.7 to 0.3 is at 0.6: level 0.6 (clean 1.0, chance 0.2)
    assert midpoint([0.1, 1.0, 10.0], [0.95, 0.8, 0.0], clean=1.0, chance=0.2) == pytest.approx(10**0.25)
    assert midpoint([10.0, 1000.0], [0.9, 0.1], clean=0.9, chance=0.1) == pytest.approx(100.0)
    # the first crossing counts, not a later one
    assert midpoint([1.0, 10.0, 100.0, 1000.0], [0.9, 0.1, 0.9, 0.1], clean=0.9, chance=0.1) == pytest.approx(10**0.5)
    # a point exactly at the level is "at or above": the crossing starts there
    assert midpoint([1.0, 10.0, 100.0], [0.9, 0.5, 0.1], clean=0.9, chance=0.1) == pytest.approx(10.0)
    assert midpoint([1.0, 10.0], [0.9, 0.5], clean=0.9, chance=0.1) is None  # never below the level
    assert midpoint([1.0, 10.0], [0.4, 0.1], clean=0.9, chance=0.1) is None  # starts below it
    assert midpoint([1.0], [0.1], clean=0.9, chance=0.1) is None and midpoint([], [], clean=0.9, chance=0.1) is None


# -- sweeps ------------------------------------------------------------------------------------------
def test_a_noise_sweep_measures_each_scale_and_the_clean_model_and_finds_the_midpoint():
    model = trained()
    grid = [0.1, 1.0, 10.0, 100.0]
    stats = GridStats()
    report = run_sweep([model], "gaussian-additive", LOADERS, grid=grid, samples=2, chance=1 / 3, stats=stats)
    assert (report.profile, report.over, report.samples, report.noise_scale, report.chance) == (
        "gaussian-additive",
        "noise",
        2,
        1.0,
        1 / 3,
    )
    points = report.curves["clean"]
    assert [x for x, _ in points] == grid and [r.noise_scale for _, r in points] == grid
    for x, r in points:
        assert r.accuracies == evaluated(model.model, "gaussian-additive", samples=2, noise_scale=x)
    means = [r.mean for _, r in points]
    assert means[0] > 0.95 > 0.5 > means[-1] and report.clean == {"clean": 1.0}
    mid = report.midpoints["clean"]
    assert mid == pytest.approx(midpoint(grid, means, clean=1.0, chance=1 / 3)) and 1.0 < mid < 100.0
    assert report.checkpoints == {"clean": "planted.pt"} and report.failures == []
    assert stats.requests == len(grid) + 1 and stats.chips_measured == 2 * len(grid) + 1
    other = run_sweep([model], "gaussian-additive", LOADERS, grid=grid, samples=2, chance=0.0)
    assert other.midpoints["clean"] == pytest.approx(midpoint(grid, means, clean=1.0, chance=0.0)) != mid


def test_a_noise_sweep_defaults_to_the_studys_grid():
    report = run_sweep([trained()], "gaussian-additive", LOADERS, samples=1)
    assert [x for x, _ in report.curves["clean"]] == log_grid()


def test_the_documented_defaults_of_a_sweep(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    report = run_sweep([trained()], "gaussian-additive", LOADERS, grid=[1.0], store=store)
    assert report.samples == 5 and report.chance == 0.1 and report.curves["clean"][0][1].n == 5
    assert {r["test_set"] for r in store.rows("evals")} == {"test"}


class Spy:
    """Runs every task here, in order, and records where each was asked to run."""

    name = "spy"

    def __init__(self) -> None:
        self.devices: list[str] = []

    def map(self, fn, tasks, on_result, *, devices=None, on_start=None):
        self.devices += list(devices or [])
        for index, args in enumerate(tasks):
            if on_start is not None:
                on_start(index)
            on_result(index, fn(*args), None)


def test_a_sweep_passes_its_store_test_set_device_executor_and_callbacks_on(tmp_path):
    model = trained()
    profile = hwprofiles.load_profile("gaussian-additive")
    for over, points in (("noise", [1.0, 10.0]), ("time", [1.0, 60.0]), ("layer", None)):
        store, spy, ticks, progress = ResultsStore(tmp_path / f"{over}.sqlite"), Spy(), [], []
        run_sweep(
            [model],
            profile,
            LOADERS,
            over=over,
            grid=points,
            samples=2,
            store=store,
            test_set="tiny",
            device="cpu:0",
            executor=spy,
            on_sample=lambda: ticks.append(1),
            on_progress=lambda *c: progress.append(c),
        )
        requests = {"noise": 3, "time": 2, "layer": 3}[over]  # a noise sweep adds the clean model; three layers
        assert spy.devices == ["cpu:0"] * requests and progress[-1] == (requests, 0, 0)
        rows = store.rows("evals")
        assert len(ticks) == len(rows) and {r["test_set"] for r in rows} == {"tiny"} and rows
    single = {"noise": (sweep_noise, [1.0, 10.0]), "time": (sweep_time, [1.0, 60.0]), "layer": (sweep_layers, None)}
    for over, (fn, points) in single.items():
        store, spy, ticks = ResultsStore(tmp_path / f"single-{over}.sqlite"), Spy(), []
        args = (model, profile, points, LOADERS) if points is not None else (model, profile, LOADERS)
        fn(
            *args,
            samples=2,
            store=store,
            test_set="tiny",
            device="cpu:0",
            executor=spy,
            on_sample=lambda: ticks.append(1),
        )
        rows = store.rows("evals")
        assert spy.devices == ["cpu:0"] * (2 if points else 3) and len(ticks) == len(rows) == 2 * len(spy.devices)
        assert {r["test_set"] for r in rows} == {"tiny"}


def test_a_time_sweep_evaluates_at_each_time_since_programming(tmp_path):
    model = trained()
    profile = hwprofiles.load_profile("pcm-joshi2020").with_noise_scale(4.0)
    store = ResultsStore(tmp_path / "r.sqlite")
    report = run_sweep([model], profile, LOADERS, over="time", samples=2, store=store, test_set="tiny/test/all")
    points = report.curves["clean"]
    assert [x for x, _ in points] == list(DRIFT_TIMES_S) == [1.0, 3600.0, 86400.0, 2592000.0, 31536000.0]
    for t, r in points:
        assert r.t_inference_s == t and r.noise_scale == 4.0
        assert r.accuracies == evaluated(model.model, "pcm-joshi2020", samples=2, noise_scale=4.0, t_inference_s=t)
    assert report.noise_scale == 4.0 and report.clean == {} and report.midpoints == {}
    rows = store.rows("evals")
    assert sorted({r["t_inference_s"] for r in rows}) == list(DRIFT_TIMES_S) and len(rows) == 10
    assert {r["test_set"] for r in rows} == {"tiny/test/all"} and {r["checkpoint"] for r in rows} == {"planted.pt"}
    timed = run_sweep([model], profile, LOADERS, over="time", grid=[60.0], samples=2)
    assert [x for x, _ in timed.curves["clean"]] == [60.0]


def test_a_layer_sweep_puts_noise_in_each_layer_in_turn():
    model = trained()
    report = run_sweep([model], "gaussian-additive", LOADERS, over="layer", grid=[1.0, 2.0], samples=2)
    layers = report.layers["clean"]
    assert (
        list(layers)
        == ["<input>", "0", "1"]
        == sweep_points(model, hwprofiles.load_profile("gaussian-additive"), "layer")
    )
    for name, r in layers.items():
        assert r.accuracies == evaluated(model.model, "gaussian-additive", samples=2, only_layer=name)
    assert report.curves == {} and report.clean == {}


def test_models_sharing_a_label_are_all_kept_and_a_failing_one_is_named():
    a, b = trained("a/x.pt"), trained("b/x.pt")
    bad = trained("bad.pt", model=Broken(), method="qat")
    report = run_sweep([a, b, bad], "gaussian-additive", LOADERS, grid=[1.0, 10.0], samples=2)
    assert set(report.curves) == {"clean[a/x.pt]", "clean[b/x.pt]", "qat"}
    assert report.checkpoints == {"clean[a/x.pt]": "a/x.pt", "clean[b/x.pt]": "b/x.pt", "qat": "bad.pt"}
    assert report.curves["clean[a/x.pt]"] == report.curves["clean[b/x.pt]"] and len(report.curves["clean[a/x.pt]"]) == 2
    assert report.curves["qat"] == [] and "qat" not in report.clean and "qat" not in report.midpoints
    assert len(report.failures) == 3  # two scales and the clean model
    assert all(f.startswith("bad.pt under ") and "mat1 and mat2" in f for f in report.failures)
    assert any("under ideal" in f for f in report.failures) and any("(scale 10," in f for f in report.failures)
    entry = report.to_dict()["models"]["qat"]
    assert entry == {"checkpoint": "bad.pt", "clean_accuracy": None, "midpoint": None, "points": []}
    layers = run_sweep([a, bad], "gaussian-additive", LOADERS, over="layer", samples=1)  # labels kept from above
    assert list(layers.layers["clean[a/x.pt]"]) == ["<input>", "0", "1"] and layers.layers["qat"] == {}
    with pytest.raises(ValueError, match="unknown sweep 'depth': use noise, time, layer"):
        run_sweep([a], "gaussian-additive", LOADERS, over="depth")


def test_the_single_sweeps_give_the_points_of_run_sweep_or_raise_naming_the_failure():
    model = trained()
    profile = hwprofiles.load_profile("gaussian-additive")
    common = dict(samples=2, store=None, test_set="t")
    report = run_sweep([model], profile, LOADERS, grid=[1.0, 10.0], samples=2)
    assert sweep_noise(model, profile, [1.0, 10.0], LOADERS, **common) == report.curves["clean"]
    pcm = hwprofiles.load_profile("pcm-joshi2020")
    times = run_sweep([model], pcm, LOADERS, over="time", grid=[1.0, 1e6], samples=2).curves["clean"]
    assert sweep_time(model, pcm, [1.0, 1e6], LOADERS, **common) == times
    layers = run_sweep([model], profile, LOADERS, over="layer", samples=2).layers["clean"]
    assert sweep_layers(model, profile, LOADERS, **common) == layers
    bad = trained("bad.pt", model=Broken())
    with pytest.raises(
        HwProfilesError,
        match=r"bad.pt under gaussian-additive \(scale 1, t 1 s\): .*mat1.*; "
        r"bad.pt under gaussian-additive \(scale 10, t 1 s\)",
    ):
        sweep_noise(bad, profile, [1.0, 10.0], LOADERS, **common)
    ticks = []
    sweep_layers(model, profile, LOADERS, samples=1, store=None, test_set="t", on_sample=lambda: ticks.append(1))
    assert len(ticks) == 3


def test_a_sweep_report_is_written_as_it_holds(tmp_path):
    a, b = trained("a.pt"), trained("b.pt", method="qat")
    report = run_sweep([a, b], "gaussian-additive", LOADERS, grid=[1.0, 10.0], samples=2)
    data = report.to_dict()
    assert (data["profile"], data["over"], data["samples"], data["noise_scale"], data["failures"]) == (
        "gaussian-additive",
        "noise",
        2,
        1.0,
        [],
    )
    entry = data["models"]["qat"]
    assert (
        entry["checkpoint"] == "b.pt"
        and entry["clean_accuracy"] == 1.0
        and entry["midpoint"] == report.midpoints["qat"]
    )
    assert entry["points"] == [{"x": x, **r.as_dict()} for x, r in report.curves["qat"]]
    paths = report.write(tmp_path / "out", dataset="tiny")
    assert json.loads(paths["json"].read_text()) == json.loads(json.dumps(data))
    assert (
        paths["json"].name == "sweep-noise-gaussian-additive.json"
        and paths["png"].name == "sweep-noise-gaussian-additive.png"
    )
    assert paths["png"].read_bytes()[:4] == b"\x89PNG" and set(paths) == {"json", "png"}

    layers = run_sweep([a, b], "gaussian-additive", LOADERS, over="layer", samples=1)
    data = layers.to_dict()
    assert data["models"]["qat"] == {
        "checkpoint": "b.pt",
        "layers": {k: r.as_dict() for k, r in layers.layers["qat"].items()},
    }
    paths = layers.write(tmp_path / "layers")
    assert {k: p.name for k, p in paths.items()} == {
        "json": "sweep-layer-gaussian-additive.json",
        "clean": "sweep-layer-gaussian-additive-clean.png",
        "qat": "sweep-layer-gaussian-additive-qat.png",
    }
    assert all(p.is_file() for p in paths.values())
    timed = run_sweep([a], "pcm-joshi2020", LOADERS, over="time", grid=[1.0, 60.0], samples=1)
    paths = timed.write(tmp_path / "time")
    assert json.loads(paths["json"].read_text())["models"]["clean"]["clean_accuracy"] is None
    assert paths["png"].name == "sweep-time-pcm-joshi2020.png" and paths["png"].is_file()


def test_a_sweep_report_of_no_model_is_empty():
    report = SweepReport("p", "noise", 1, 1.0, 0.1)
    assert report.to_dict() == {
        "profile": "p",
        "over": "noise",
        "samples": 1,
        "noise_scale": 1.0,
        "models": {},
        "failures": [],
    }


# -- transfer matrices ----------------------------------------------------------------------------
def _summary(mean: float, half: float = 0.02) -> Summary:
    return Summary(mean, 0.01, mean - half, mean + half, 3)


ACC = {"clean": [0.9, 0.5, 0.4], "qat": [0.9, 0.6, 0.5], "nit:a": [0.88, 0.8, 0.6], "nit:b": [0.87, 0.7, 0.75]}


def matrix(acc=ACC, cols=("ideal", "a", "b")) -> TransferResult:
    rows = list(acc)
    cells = {(r, c): _summary(acc[r][j]) for r in rows for j, c in enumerate(cols)}
    return TransferResult(
        rows, list(cols), cells, {"ideal": 1.0, "a": 2.5, "b": 0.125}, "matched", {r: f"ckpt/{r}.pt" for r in rows}
    )


def test_transfer_efficiency_divides_each_column_by_the_model_trained_under_it():
    result = matrix()
    assert result.accuracy() == [ACC[r] for r in ACC]
    eff = result.efficiency()
    expected = [
        [None, 0.5 / 0.8, 0.4 / 0.75],
        [None, 0.6 / 0.8, 0.5 / 0.75],
        [None, 1.0, 0.6 / 0.75],
        [None, 0.7 / 0.8, 1.0],
    ]
    assert [[None if v is None else pytest.approx(v) for v in row] for row in eff] == expected
    assert result.worst_off_diagonal() == (pytest.approx(0.6 / 0.75), "nit:a", "b")
    # clean and QAT rows are never "off-diagonal NIT" even where they are worse
    zero = matrix({**ACC, "nit:b": [0.87, 0.7, 0.0]})
    assert zero.efficiency()[0][2] is None  # no division by an accuracy of 0
    assert zero.worst_off_diagonal() == (pytest.approx(0.7 / 0.8), "nit:b", "a")
    assert matrix({"clean": [0.9, 0.5, 0.4], "qat": [0.9, 0.6, 0.5]}).worst_off_diagonal() is None


def test_transfer_files_hold_every_cell():
    result = matrix()
    data = json.loads(result.to_json())
    assert data["rows"] == list(ACC) and data["cols"] == ["ideal", "a", "b"] and data["scale_mode"] == "matched"
    assert data["noise_scales"] == {"ideal": 1.0, "a": 2.5, "b": 0.125}
    assert data["accuracy"]["nit:a | b"] == _summary(0.6).as_dict() and len(data["accuracy"]) == 12
    assert data["transfer_efficiency"][2] == [None, 1.0, pytest.approx(0.8)]
    assert data["worst_off_diagonal"] == [pytest.approx(0.8), "nit:a", "b"]
    assert data["checkpoints"] == {r: f"ckpt/{r}.pt" for r in ACC}
    rows = list(csv.reader(io.StringIO(result.to_csv())))
    assert rows[0] == ["trained", "evaluated", "noise_scale", "mean", "std", "ci_low", "ci_high", "n", "efficiency"]
    assert len(rows) == 13
    assert rows[1] == ["clean", "ideal", "1.0", "0.9000", "0.0100", "0.8800", "0.9200", "3", ""]
    assert rows[9] == ["nit:a", "b", "0.125", "0.6000", "0.0100", "0.5800", "0.6200", "3", "0.8000"]
    md = result.to_markdown()
    assert "| trained \\ evaluated | ideal | a | b |" in md and "|---|---|---|---|" in md
    assert "| nit:a | 0.880 ± 0.020 | 0.800 ± 0.020 | 0.600 ± 0.020 |" in md.splitlines()  # a table row of its own
    assert "| nit:a | – | 1.000 | 0.800 |" in md and "| clean | – | 0.625 | 0.533 |" in md
    assert "**0.800** (nit:a evaluated under b)" in md and "Noise scales (matched): ideal: 1, a: 2.5, b: 0.125" in md
    assert "above 1" not in md
    # Weak matched models make every efficiency exceed 1: the report says so.
    weak = matrix({"nit:a": [0.5, 0.3, 0.6], "nit:b": [0.5, 0.48, 0.4]}).to_markdown()
    assert "**1.500** (nit:a evaluated under b): above 1" in weak and "references are weak" in weak
    nothing = matrix({"clean": [0.9, 0.5, 0.4]}).to_markdown()
    assert "undefined (no NIT row with another column)" in nothing


def test_transfer_files_are_written(tmp_path):
    paths = matrix().write(tmp_path, stem="t")
    assert {k: p.name for k, p in paths.items()} == {
        "csv": "t.csv",
        "json": "t.json",
        "md": "t.md",
        "png": "t.png",
        "efficiency_png": "t-efficiency.png",
    }
    assert paths["csv"].read_bytes().decode() == matrix().to_csv() and paths["md"].read_text() == matrix().to_markdown()
    assert json.loads(paths["json"].read_text()) == json.loads(matrix().to_json())
    only_clean = matrix({"clean": [0.9, 0.5, 0.4]}).write(tmp_path / "c")
    assert set(only_clean) == {"csv", "json", "md", "png"} and (tmp_path / "c" / "transfer.png").is_file()
    assert not (tmp_path / "c" / "transfer-efficiency.png").exists()


def test_the_runs_of_a_transfer_experiment():
    base = TrainConfig(model="mlp", dataset="tiny", method="qat", profile="ideal", noise_scale=3.0, seed=4)
    configs = transfer_configs(base, ["pcm-hermes", "rram-hfox"], {"pcm-hermes": 0.5}, mixed_profiles=["all"])
    assert [(c.method, c.profile, c.noise_scale) for c in configs] == [
        ("clean", None, None),
        ("qat", None, None),
        ("nit", "pcm-hermes", 0.5),
        ("nit", "rram-hfox", None),
        ("nit", "all", None),
    ]
    assert all(c.seed == 4 and c.model == "mlp" for c in configs)
    assert [c.method for c in transfer_configs(base, ["ideal"], {}, qat=False)] == ["clean", "nit"]


def test_the_matched_scale_costs_the_clean_model_the_target_drop():
    model = trained()
    clean = evaluate(model.model, TEST, "ideal", samples=1).mean
    scale = matched_scale(
        model,
        "gaussian-additive",
        LOADERS,
        target_drop=0.3,
        clean_accuracy=clean,
        samples=2,
        store=None,
        test_set="t",
        steps=8,
    )
    # bisection in log10 over [-3, 3]: after 8 steps the answer is within 6 / 2**8 decades of the crossing
    step = 6 / 2**8
    below = evaluate(model.model, TEST, "gaussian-additive", samples=2, noise_scale=scale * 10 ** (-4 * step)).mean
    above = evaluate(model.model, TEST, "gaussian-additive", samples=2, noise_scale=scale * 10 ** (4 * step)).mean
    assert below > 0.7 * clean >= above
    coarse = matched_scale(
        model,
        "gaussian-additive",
        LOADERS,
        target_drop=0.3,
        clean_accuracy=clean,
        samples=2,
        store=None,
        test_set="t",
        steps=1,
    )
    assert coarse == pytest.approx(10**1.5)  # one step: 1 loses less than 30%, so the upper half's middle
    assert (
        matched_scale(
            model,
            "gaussian-additive",
            LOADERS,
            target_drop=0.3,
            clean_accuracy=clean,
            samples=2,
            store=None,
            test_set="t",
            steps=0,
        )
        == 1.0
    )


def test_the_matched_scale_search_is_stored_at_the_scales_it_tried(tmp_path):
    model = trained()
    store = ResultsStore(tmp_path / "r.sqlite")
    matched_scale(
        model,
        "gaussian-additive",
        LOADERS,
        target_drop=0.3,
        clean_accuracy=1.0,
        samples=3,
        store=store,
        test_set="tiny",
        steps=2,
    )
    rows = store.rows("evals")
    assert sorted({r["noise_scale"] for r in rows}) == pytest.approx([1.0, 10**1.5])  # 10**0, then 10**1.5
    assert len(rows) == 6 and {r["test_set"] for r in rows} == {"tiny"} and {r["seed"] for r in rows} == {0, 1, 2}


# -- run_transfer end to end ------------------------------------------------------------------------
BASE = TrainConfig(model="mlp", dataset="synthetic", width=0.25, epochs=1, batch_size=64, train_subset=64)


@pytest.fixture(scope="module")
def synthetic():
    from hwprofiles.data import load_dataset, make_loaders

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures come before the one-thread fixture of each test
    try:
        splits = load_dataset("synthetic", seed=0)
        return splits, make_loaders(splits, 128, seed=0, shuffle=False)
    finally:
        torch.set_num_threads(threads)


def checkpoint_name(config: TrainConfig) -> str:
    scale = "" if config.noise_scale is None else f"-x{config.noise_scale:.3g}"
    return f"{config.model}-{config.label.replace(':', '-')}{scale}-s{config.seed}.pt"


def test_a_transfer_matrix_trains_what_is_missing_and_evaluates_every_cell(tmp_path, synthetic):
    splits, loaders = synthetic
    ckpt = tmp_path / "checkpoints"
    clean_cfg, qat_cfg = (TrainConfig(**{**BASE.to_dict(), "method": m}) for m in ("clean", "qat"))
    write_checkpoint(ckpt / "mlp-clean-s0.pt", clean_cfg, seed=1)
    write_checkpoint(ckpt / "mlp-qat-s0.pt", qat_cfg, seed=2)
    extra = chips.load_trained(write_checkpoint(tmp_path / "w.pt", clean_cfg, seed=3), splits)
    extra.label = "mine"
    events: list[str] = []
    store = ResultsStore(tmp_path / "r.sqlite")
    stats = GridStats()
    result = run_transfer(
        BASE,
        train_profiles=["gaussian-additive"],
        eval_profiles=["ideal", "gaussian-additive"],
        out_dir=tmp_path,
        splits=splits,
        loaders=loaders,
        samples=2,
        store=store,
        progress=False,
        on_event=events.append,
        extra_models=[extra],
        stats=stats,
        test_set="synthetic/test/all",
    )
    nit = ckpt / "mlp-nit-gaussian-additive-x1-s0.pt"
    assert events == [
        f"reusing finished checkpoint {ckpt / 'mlp-clean-s0.pt'}",
        f"reusing finished checkpoint {ckpt / 'mlp-qat-s0.pt'}",
        f"training nit:gaussian-additive -> {nit}",
    ]
    assert nit.is_file() and torch.load(nit, weights_only=True)["meta"]["finished"]
    assert result.rows == ["clean", "qat", "nit:gaussian-additive", "mine"]
    assert result.cols == ["ideal", "gaussian-additive"] and result.scale_mode == "published"
    assert result.scales == {"ideal": 1.0, "gaussian-additive": 1.0}
    assert result.checkpoints == {
        "clean": str(ckpt / "mlp-clean-s0.pt"),
        "qat": str(ckpt / "mlp-qat-s0.pt"),
        "nit:gaussian-additive": str(nit),
        "mine": str(tmp_path / "w.pt"),
    }
    models = {"clean": ckpt / "mlp-clean-s0.pt", "qat": ckpt / "mlp-qat-s0.pt", "nit:gaussian-additive": nit}
    for row, path in models.items():
        model = chips.load_trained(path, splits)
        for col in result.cols:
            expected = chips.evaluate_checkpoint(model, col, loaders, samples=2)
            assert result.cells[(row, col)] == expected, (row, col)
    assert (
        result.cells[("mine", "ideal")].accuracies
        == chips.evaluate_checkpoint(extra, "ideal", loaders, samples=1).accuracies * 2
    )
    assert stats.requests == 8 and stats.chips_measured == 16 and len(store.rows("evals")) == 16
    assert {r["test_set"] for r in store.rows("evals")} == {"synthetic/test/all"}
    assert json.loads((tmp_path / "transfer.json").read_text()) == json.loads(result.to_json())
    assert all((tmp_path / f"transfer.{ext}").is_file() for ext in ("csv", "md", "png"))
    assert (tmp_path / "transfer-efficiency.png").is_file()

    events.clear()
    again = run_transfer(
        BASE,
        train_profiles=["gaussian-additive"],
        eval_profiles=["ideal", "gaussian-additive"],
        out_dir=tmp_path,
        splits=splits,
        loaders=loaders,
        samples=2,
        store=store,
        progress=False,
        on_event=events.append,
        test_set="synthetic/test/all",
    )
    assert all(e.startswith("reusing finished checkpoint") for e in events) and len(events) == 3
    assert (
        again.cells[("nit:gaussian-additive", "gaussian-additive")]
        == result.cells[("nit:gaussian-additive", "gaussian-additive")]
    )
    assert [c.cached for c in again.cells.values()] == [2] * 6


def test_a_matched_transfer_scales_each_noisy_profile_and_names_the_scale(tmp_path, synthetic):
    splits, loaders = synthetic
    ckpt = tmp_path / "checkpoints"
    for seed, method in enumerate(("clean", "qat")):
        write_checkpoint(ckpt / f"mlp-{method}-s0.pt", TrainConfig(**{**BASE.to_dict(), "method": method}), seed=seed)
    events: list[str] = []
    store = ResultsStore(tmp_path / "r.sqlite")
    # the base of an NIT run: its clean and QAT rows drop the training profile and scale
    base = TrainConfig(**{**BASE.to_dict(), "method": "nit", "profile": "gaussian-additive", "noise_scale": 2.0})
    result = run_transfer(
        base,
        train_profiles=[],
        eval_profiles=["ideal", "gaussian-additive"],
        out_dir=tmp_path,
        splits=splits,
        loaders=loaders,
        samples=6,
        scale_mode="matched",
        target_drop=0.2,
        progress=False,
        on_event=events.append,
        store=store,
        test_set="synthetic/test/all",
    )
    assert [e for e in events if not e.startswith("gaussian-additive: matched")] == [
        f"reusing finished checkpoint {ckpt / f'mlp-{m}-s0.pt'}" for m in ("clean", "qat")
    ]
    rows = store.rows("evals")
    assert {r["test_set"] for r in rows} == {"synthetic/test/all"}
    search = [
        r
        for r in rows
        if r["eval_profile"] == "gaussian-additive" and r["noise_scale"] != result.scales["gaussian-additive"]
    ]
    assert {r["seed"] for r in search} == {0, 1, 2}  # half the chips of the matrix, at least 2
    clean = chips.load_trained(ckpt / "mlp-clean-s0.pt", splits)
    clean_acc = chips.evaluate_checkpoint(clean, "ideal", loaders, samples=1).mean
    expected = matched_scale(
        clean,
        "gaussian-additive",
        loaders,
        target_drop=0.2,
        clean_accuracy=clean_acc,
        samples=3,
        store=None,
        test_set="test",
    )
    assert result.scales == {"ideal": 1.0, "gaussian-additive": expected} and result.scale_mode == "matched"
    assert f"gaussian-additive: matched noise scale {expected:.3g}" in events
    cell = result.cells[("clean", "gaussian-additive")]
    assert (
        cell.accuracies
        == chips.evaluate_checkpoint(clean, "gaussian-additive", loaders, samples=6, noise_scale=expected).accuracies
    )
    assert (
        result.rows == ["clean", "qat"]
        and json.loads((tmp_path / "transfer.json").read_text())["scale_mode"] == "matched"
    )
    with pytest.raises(ValueError, match="unknown scale mode 'same': use published or matched"):
        run_transfer(
            BASE,
            train_profiles=[],
            eval_profiles=["ideal"],
            out_dir=tmp_path,
            splits=splits,
            loaders=loaders,
            scale_mode="same",
            progress=False,
        )


class Elsewhere:
    """An executor that is not this process (tasks run here, but nothing is shared)."""

    name = "elsewhere"

    def __init__(self) -> None:
        self.tasks = 0
        self.devices: list[str] = []

    def map(self, fn, tasks, on_result, *, devices=None, on_start=None):
        self.devices += list(devices or [])
        for index, args in enumerate(tasks):
            self.tasks += 1
            try:
                value = fn(*args)
            except Exception as exc:  # noqa: BLE001 - reported like a failed remote task
                on_result(index, None, exc)
            else:
                on_result(index, value, None)


def test_training_elsewhere_writes_each_checkpoint_and_names_each_failure(tmp_path, synthetic):
    splits, loaders = synthetic
    good = TrainConfig(**{**BASE.to_dict(), "seed": 1})
    bad = TrainConfig(**{**BASE.to_dict(), "model": "no-such-model", "seed": 2})
    events: list[str] = []
    elsewhere = Elsewhere()
    with pytest.raises(HwProfilesError, match=r"training failed: clean: .*no-such-model"):
        train_on(
            elsewhere,
            [(bad, tmp_path / "bad.pt"), (good, tmp_path / "good.pt")],
            splits,
            on_event=events.append,
            device="cpu:0",
        )
    assert elsewhere.devices == ["cpu:0", "cpu:0"]  # where each run was asked to train
    assert not (tmp_path / "bad.pt").exists()
    written = chips.load_trained(tmp_path / "good.pt", splits)
    assert written.config == good and written.meta["finished"]
    assert events[0].startswith("training clean failed: ") and events[1] == f"trained clean -> {tmp_path / 'good.pt'}"

    # run_transfer sends its training to a remote executor too, then evaluates there; a finished
    # checkpoint of another configuration at the same path is trained afresh, not reused
    executor = Elsewhere()
    write_checkpoint(tmp_path / "t" / "checkpoints" / "mlp-clean-s0.pt", TrainConfig(**{**BASE.to_dict()}))
    write_checkpoint(
        tmp_path / "t" / "checkpoints" / "mlp-qat-s0.pt", TrainConfig(**{**BASE.to_dict(), "method": "qat", "lr": 0.5})
    )
    events.clear()
    result = run_transfer(
        BASE,
        train_profiles=[],
        eval_profiles=["ideal"],
        out_dir=tmp_path / "t",
        splits=splits,
        loaders=loaders,
        samples=1,
        progress=False,
        executor=executor,
        on_event=events.append,
    )
    assert events[-1] == f"trained qat -> {tmp_path / 't' / 'checkpoints' / 'mlp-qat-s0.pt'}"
    assert (tmp_path / "t" / "checkpoints" / "mlp-qat-s0.pt").is_file() and executor.tasks == 3  # 1 training, 2 cells
    qat = chips.load_trained(tmp_path / "t" / "checkpoints" / "mlp-qat-s0.pt", splits)
    assert qat.config == TrainConfig(**{**BASE.to_dict(), "method": "qat"})  # retrained under its own configuration
    assert result.cells[("qat", "ideal")] == chips.evaluate_checkpoint(qat, "ideal", loaders, samples=1)


def test_a_failed_cell_is_not_a_number_and_the_rest_are_kept(tmp_path, synthetic, monkeypatch):
    splits, loaders = synthetic
    ckpt = tmp_path / "checkpoints"
    for seed, method in enumerate(("clean", "qat")):
        write_checkpoint(ckpt / f"mlp-{method}-s0.pt", TrainConfig(**{**BASE.to_dict(), "method": method}), seed=seed)
    broken = Trained(
        tmp_path / "broken.pt", TrainConfig(model="broken", dataset="synthetic"), Broken(), {}, label="broken"
    )
    stats = GridStats()
    result = run_transfer(
        BASE,
        train_profiles=[],
        eval_profiles=["ideal"],
        out_dir=tmp_path,
        splits=splits,
        loaders=loaders,
        samples=1,
        progress=False,
        extra_models=[broken],
        stats=stats,
    )
    cell = result.cells[("broken", "ideal")]
    assert math.isnan(cell.mean) and cell.n == 0 and cell.profile == "ideal"
    assert result.rows == ["clean", "qat", "broken"]
    assert result.cells[("qat", "ideal")].n == 1 and len(stats.failures) == 1
    assert stats.failures[0].name.startswith(f"{tmp_path / 'broken.pt'} under ideal")
    assert isinstance(result.cells[("qat", "ideal")], EvaluationResult)
