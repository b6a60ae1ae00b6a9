"""Evaluation over chip instances (``eval/chips.py``, ``eval/grid.py``) on tiny models built
here, no training: each chip's accuracy is the profile programmed with that seed, every
argument reaches the numbers, the store is read before anything is measured, failures are
reported by name, and the summary is the t interval of the chips, clipped to [0, 1].

The reference numbers come from the public API (``to_noisy``, ``calibrate``, ``program``)
and a hand-written accuracy count, not from the evaluation code under test.
"""

from __future__ import annotations

import math
import statistics
import time
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import hwprofiles
from hwprofiles.errors import CheckpointError, HwProfilesError, UnknownNameError
from hwprofiles.eval import chips
from hwprofiles.eval.chips import EvaluationResult, Summary, Trained, evaluate, evaluate_checkpoint, summarize
from hwprofiles.eval.grid import GridStats, measure, prepare, run_requests
from hwprofiles.eval.keys import model_digest
from hwprofiles.results import ResultsStore
from hwprofiles.train import TrainConfig

NOISY = 10.0  # gaussian-additive at sigma 1 on unit-variance inputs: chips differ, well above chance


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def task(n: int = 96, seed: int = 0, batch: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Inputs N(0, 1) in 8 features; the label is the largest of the first three."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = x[:, :3].argmax(dim=1)
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def planted() -> nn.Module:
    """Two linear layers that solve :func:`task` exactly (clean accuracy 1.0)."""
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(8))
        model[0].bias.zero_()
        model[1].weight.zero_()
        model[1].weight[:, :3] = torch.eye(3)
        model[1].bias.zero_()
    return model.eval()


def by_hand(model, batches, profile, seeds, *, t=None, exclude=(), calibration=None) -> list[float]:
    """Each chip's accuracy through the public API and a plain count of correct answers."""
    noisy = hwprofiles.to_noisy(model, profile, exclude=list(exclude))
    if calibration is not None:
        hwprofiles.calibrate(noisy, calibration)
    out = []
    for seed in seeds:
        hwprofiles.program(noisy, seed=seed, t_inference_s=t)
        with torch.no_grad():
            correct = sum(int((noisy.eval()(x).argmax(dim=1) == y).sum()) for x, y in batches)
        out.append(correct / sum(len(y) for _, y in batches))
    return out


def gaussian(scale: float = NOISY) -> hwprofiles.Profile:
    return hwprofiles.load_profile("gaussian-additive").with_noise_scale(scale)


# -- what evaluate() measures -------------------------------------------------------------------
def test_each_chip_is_the_profile_programmed_with_its_seed():
    model, data = planted(), task()
    result = evaluate(model, data, "gaussian-additive", samples=4, noise_scale=NOISY)
    expected = by_hand(model, data, gaussian(), range(4))
    assert list(result.accuracies) == expected and len(set(expected)) > 1 and 0.4 < min(expected)
    assert result.seeds == (0, 1, 2, 3) and result.n == 4
    assert math.isclose(result.mean, statistics.fmean(expected))
    assert math.isclose(result.std, statistics.stdev(expected))
    assert result.summary == summarize(expected)
    assert (result.profile, result.noise_scale, result.t_inference_s) == ("gaussian-additive", NOISY, 1.0)
    assert len(set(result.keys)) == 4 and all(len(k) == 64 for k in result.keys)
    assert result.hashes["calibration"] == "" and result.hashes["model"] == model_digest(model)
    assert result.cached == 0
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), planted().state_dict().values()))


def test_the_ideal_profile_gives_the_float_models_accuracy_on_every_chip():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(8, 3)).eval()  # random weights: an accuracy well inside (0, 1)
    data = task()
    with torch.no_grad():
        float_acc = sum(int((model(x).argmax(1) == y).sum()) for x, y in data) / 96
    result = evaluate(model, data, "ideal", samples=3)
    assert 0.1 < float_acc < 0.9 and result.accuracies == (float_acc,) * 3
    assert evaluate(model, data, "ideal").n == 5  # the documented default number of chips
    assert (result.mean, result.std, result.ci_low, result.ci_high) == (float_acc, 0.0, float_acc, float_acc)


def test_the_noise_scale_and_the_inference_time_reach_every_chip():
    model, data, calibration = planted(), task(), [x for x, _ in task(seed=1)]
    pcm = hwprofiles.load_profile("pcm-joshi2020").with_noise_scale(6.0)
    default = evaluate(model, data, "pcm-joshi2020", samples=3, noise_scale=6.0, calibration=calibration)
    assert default.t_inference_s == 3600.0 and default.noise_scale == 6.0
    assert list(default.accuracies) == by_hand(model, data, pcm, range(3), calibration=calibration)
    late = evaluate(
        model, data, "pcm-joshi2020", samples=3, noise_scale=6.0, calibration=calibration, t_inference_s=3e7
    )
    assert late.t_inference_s == 3e7
    assert list(late.accuracies) == by_hand(model, data, pcm, range(3), t=3e7, calibration=calibration)
    assert late.accuracies != default.accuracies and set(late.keys).isdisjoint(default.keys)
    assert late.hashes["profile"] != default.hashes["profile"]
    quiet = evaluate(model, data, "pcm-joshi2020", samples=3, calibration=calibration)
    assert quiet.noise_scale == 1.0 and quiet.hashes["profile"] != default.hashes["profile"]


def test_only_layer_puts_noise_in_that_layer_alone():
    model, data = planted(), task()
    one = evaluate(model, data, "gaussian-additive", samples=3, noise_scale=NOISY, only_layer="1")
    assert list(one.accuracies) == by_hand(model, data, gaussian(), range(3), exclude=["<input>", "0"])
    every = evaluate(model, data, "gaussian-additive", samples=3, noise_scale=NOISY)
    assert one.accuracies != every.accuracies and set(one.keys).isdisjoint(every.keys)


def test_calibration_takes_inputs_or_batches_and_is_part_of_the_key():
    model, data = planted(), task()
    batches = task(seed=1)
    inputs = [x for x, _ in batches]
    as_batches = evaluate(model, data, "pcm-joshi2020", samples=2, calibration=batches)
    as_inputs = evaluate(model, data, "pcm-joshi2020", samples=2, calibration=inputs)
    assert as_batches.accuracies == as_inputs.accuracies and as_batches.keys == as_inputs.keys
    assert as_batches.hashes["calibration"] not in ("", None)
    pcm = hwprofiles.load_profile("pcm-joshi2020")
    assert list(as_inputs.accuracies) == by_hand(model, data, pcm, range(2), calibration=inputs)
    other = evaluate(model, data, "pcm-joshi2020", samples=2, calibration=[2 * x for x in inputs])
    assert other.hashes["calibration"] != as_inputs.hashes["calibration"] and set(other.keys).isdisjoint(as_inputs.keys)
    # a profile without calibrated DAC bounds ignores calibration data: nothing of it in the key
    plain = evaluate(model, data, "gaussian-additive", samples=2, calibration=batches)
    assert (
        plain.hashes["calibration"] == "" and plain.keys == evaluate(model, data, "gaussian-additive", samples=2).keys
    )


def test_bad_arguments_are_refused_before_anything_is_measured():
    model, data = planted(), task()
    with pytest.raises(ValueError, match="samples=0: evaluate at least one chip instance"):
        evaluate(model, data, "gaussian-additive", samples=0)
    for t in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match=r"t_inference_s=.*finite number >= 0"):
            evaluate(model, data, "gaussian-additive", samples=1, t_inference_s=t)
    assert evaluate(model, data, "gaussian-additive", samples=1, t_inference_s=0.0).t_inference_s == 0.0
    with pytest.raises(
        HwProfilesError,
        match="profile 'pcm-joshi2020' sets its DAC input bounds or ADC ranges from data: pass calibration=",
    ):
        evaluate(model, data, "pcm-joshi2020", samples=1)
    with pytest.raises(HwProfilesError, match="no noisy layer named '2'; the layers are: <input>, 0, 1"):
        evaluate(model, data, "gaussian-additive", samples=1, only_layer="2")


def test_a_generator_and_a_data_loader_give_the_same_chips_as_a_list():
    model, data = planted(), task()
    listed = evaluate(model, data, "gaussian-additive", samples=2, noise_scale=NOISY)
    generated = evaluate(model, (b for b in data), "gaussian-additive", samples=2, noise_scale=NOISY)
    x = torch.cat([b[0] for b in data])
    y = torch.cat([b[1] for b in data])
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    loaded = evaluate(model, loader, "gaussian-additive", samples=2, noise_scale=NOISY)
    assert generated.accuracies == listed.accuracies == loaded.accuracies
    assert generated.keys == listed.keys
    again = evaluate(model, loader, "gaussian-additive", samples=2, noise_scale=NOISY)
    assert again.accuracies == loaded.accuracies and again.keys == loaded.keys
    # per-read noise follows the batches: another batch size is another measurement
    other = evaluate(
        model, DataLoader(TensorDataset(x, y), batch_size=48), "gaussian-additive", samples=2, noise_scale=NOISY
    )
    assert other.hashes["data"] == loaded.hashes["data"] and set(other.keys).isdisjoint(loaded.keys)
    rebatched = evaluate(model, [(x[:48], y[:48]), (x[48:], y[48:])], "gaussian-additive", samples=2, noise_scale=NOISY)
    assert rebatched.hashes["data"] != listed.hashes["data"]


# -- the store --------------------------------------------------------------------------------------
def test_the_store_is_read_before_measuring_and_written_with_labels(tmp_path):
    model, data = planted(), task()
    store = ResultsStore(tmp_path / "r.sqlite")
    request = prepare(model, data, "gaussian-additive", samples=3, noise_scale=NOISY)
    store.put_eval(request.keys[1], 0.125)  # chip 1 is already known: it must not be measured again
    ticks = []
    result = evaluate(
        model,
        data,
        "gaussian-additive",
        samples=3,
        noise_scale=NOISY,
        store=store,
        labels={"model": "planted", "test_set": "tiny"},
        on_sample=lambda: ticks.append(1),
    )
    expected = by_hand(model, data, gaussian(), [0, 2])
    assert result.accuracies == (expected[0], 0.125, expected[1]) and result.cached == 1 and len(ticks) == 3
    rows = {r["seed"]: r for r in store.rows("evals")}
    assert sorted(rows) == [0, 1, 2]
    for seed in (0, 2):
        row = rows[seed]
        assert row["key"] == request.keys[seed].id and row["accuracy"] == result.accuracies[seed]
        assert (row["model"], row["test_set"], row["eval_profile"], row["noise_scale"], row["t_inference_s"]) == (
            "planted",
            "tiny",
            "gaussian-additive",
            NOISY,
            1.0,
        )
        assert row["batch_size"] == 0 and row["layer"] == "" and row["device"] == "cpu"
    again = evaluate(
        model, data, "gaussian-additive", samples=3, noise_scale=NOISY, store=store, on_sample=lambda: ticks.append(1)
    )
    assert again.accuracies == result.accuracies and again.cached == 3 and len(ticks) == 6
    more = evaluate(model, data, "gaussian-additive", samples=4, noise_scale=NOISY, store=store)
    assert more.cached == 3 and more.accuracies[:3] == result.accuracies
    assert more.accuracies[3] == by_hand(model, data, gaussian(), [3])[0] and len(store.rows("evals")) == 4
    named = evaluate(model, data, "gaussian-additive", samples=1, store=store, labels={"eval_profile": "mine"})
    assert store.rows("evals")[-1]["eval_profile"] == "mine" and named.profile == "gaussian-additive"


def test_what_identifies_the_model_in_a_key(tmp_path):
    model, data = planted(), task()
    base = prepare(model, data, "gaussian-additive", samples=2)
    assert base.hashes["model"] == model_digest(model)
    assert prepare(model, data, "gaussian-additive", samples=2, model_hash="h" * 64).keys[0].model == "h" * 64
    described = prepare(model, data, "gaussian-additive", samples=2, description={"method": "qat"})
    assert described.hashes["model"] == model_digest(model, {"method": "qat"}) != base.hashes["model"]
    result = evaluate(model, data, "gaussian-additive", samples=2, description={"method": "qat"})
    assert result.hashes["model"] == described.hashes["model"] and result.keys == tuple(k.id for k in described.keys)
    assert prepare(model, data, "gaussian-additive", samples=2, device=torch.device("cpu")).keys == base.keys
    assert [k.seed for k in base.keys] == [0, 1] and {k.device for k in base.keys} == {"cpu"}
    layer = prepare(model, data, "gaussian-additive", samples=2, only_layer="0")
    assert {k.layer for k in layer.keys} == {"0"} and {k.layer for k in base.keys} == {""}
    assert base.labels == {"eval_profile": "gaussian-additive"} and base.device == "cpu"
    assert base.t_inference_s == 1.0 and base.samples == 2 and base.batches == data
    assert prepare(model, data, "ideal").samples == 5 and len(prepare(model, data, "ideal").keys) == 5


# -- many requests --------------------------------------------------------------------------------
class Broken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 3)  # the data have 8 features: every forward fails

    def forward(self, x):
        return self.fc(x)


def test_a_failing_request_is_named_and_the_others_go_on(tmp_path):
    data = task()
    good = prepare(planted(), data, "gaussian-additive", samples=2, noise_scale=NOISY)
    bad = prepare(
        Broken(),
        data,
        "gaussian-additive",
        samples=2,
        noise_scale=NOISY,
        only_layer="fc",
        labels={"checkpoint": "runs/bad.pt"},
    )
    other = prepare(planted(), data, "gaussian-additive", samples=3, noise_scale=2.0)
    store = ResultsStore(tmp_path / "r.sqlite")
    stats = GridStats()
    progress = []
    results = run_requests([good, bad, other], store=store, stats=stats, on_progress=lambda *c: progress.append(c))
    assert results[1] is None
    assert list(results[0].accuracies) == by_hand(planted(), data, gaussian(), range(2))
    assert list(results[2].accuracies) == by_hand(planted(), data, gaussian(2.0), range(3))
    assert results[2].noise_scale == 2.0 and results[2].n == 3
    [failure] = stats.failures
    assert failure.name == "runs/bad.pt under gaussian-additive (scale 10, t 1 s, layer fc)"
    assert "mat1 and mat2 shapes cannot be multiplied" in failure.error
    assert (stats.requests, stats.chips_measured, stats.chips_cached) == (3, 5, 0)
    assert stats.compute_s > 0 and stats.wall_s > 0
    assert progress[0] == (0, 0, 0) and progress[-1] == (2, 0, 1)
    assert progress == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (1, 0, 1), (1, 1, 1), (2, 0, 1)]
    assert len(store.rows("evals")) == 5
    assert "5 chip instances measured, 0 read from the results store" in stats.summary()
    assert stats.summary().endswith("; 1 failed")

    again = GridStats()
    progress.clear()
    rerun = run_requests([good, other], store=store, stats=again, on_progress=lambda *c: progress.append(c))
    assert [r.accuracies for r in rerun] == [results[0].accuracies, results[2].accuracies]
    assert (again.chips_cached, again.chips_measured, again.failures) == (5, 0, [])
    assert progress == [(2, 0, 0)] and [r.cached for r in rerun] == [2, 3]
    with pytest.raises(RuntimeError, match="mat1 and mat2"):
        run_requests([bad])  # alone, its error is raised


def test_a_request_is_named_after_what_was_evaluated():
    data = task()
    named = prepare(
        planted(), data, "pcm-joshi2020", samples=1, calibration=data, t_inference_s=60.0, labels={"model": "planted"}
    )
    assert named.name == "planted under pcm-joshi2020 (scale 1, t 60 s)"
    assert prepare(planted(), data, "gaussian-additive", samples=1, noise_scale=0.5).name == (
        "model under gaussian-additive (scale 0.5, t 1 s)"
    )


class RemoteLike:
    """An executor that is not this process: chips come back only when a task ends."""

    name = "remote"

    def map(self, fn, tasks, on_result, *, devices=None, on_start=None):
        for index, (request, seeds, on_chip) in enumerate(tasks):
            assert on_chip is None  # a remote task cannot call back into the driver
            if on_start is not None:
                on_start(index)
            on_result(index, fn(request, seeds, None), None)


def test_a_remote_task_records_every_chip_when_it_ends(tmp_path):
    data = task()
    requests = [prepare(planted(), data, "gaussian-additive", samples=3, noise_scale=s) for s in (NOISY, 3.0)]
    store = ResultsStore(tmp_path / "r.sqlite")
    store.put_eval(requests[0].keys[0], 0.0625)
    ticks = []
    remote = run_requests(requests, store=store, executor=RemoteLike(), on_sample=lambda: ticks.append(1))
    local = run_requests(requests)
    assert remote[0].accuracies == (0.0625, *local[0].accuracies[1:]) and remote[1].accuracies == local[1].accuracies
    assert [r.cached for r in remote] == [1, 0] and len(ticks) == 6
    assert sorted((r["noise_scale"], r["seed"]) for r in store.rows("evals") if r["accuracy"] != 0.0625) == [
        (3.0, 0),
        (3.0, 1),
        (3.0, 2),
        (NOISY, 1),
        (NOISY, 2),
    ]


def test_measure_hears_of_each_chip_as_it_is_measured():
    data = task()
    request = prepare(planted(), data, "gaussian-additive", samples=3, noise_scale=NOISY, only_layer="0")
    heard = []
    accuracies, seconds = measure(request, [2, 0], lambda seed, acc: heard.append((seed, acc)))
    expected = by_hand(planted(), data, gaussian(), [2, 0], exclude=["<input>", "1"])
    assert accuracies == expected and heard == list(zip([2, 0], expected)) and seconds > 0


def test_grid_stats_summary_reports_counts_and_parallelism():
    stats = GridStats(requests=4, chips_cached=3, chips_measured=9, compute_s=12.0, wall_s=4.0)
    assert stats.summary() == (
        "4 evaluations: 9 chip instances measured, 3 read from the results store; "
        "12.0 s of compute in 4.0 s wall (3.00x)"
    )
    assert GridStats().summary().endswith("0.0 s of compute in 0.0 s wall (0.00x)")
    assert GridStats(compute_s=0.3, wall_s=0.5).summary().endswith("(0.60x)")


# -- the summary over chips -------------------------------------------------------------------------
def test_the_summary_is_the_t_interval_of_the_chips():
    from scipy import stats

    values = [0.61, 0.7, 0.64, 0.58, 0.66]
    s = summarize(values)
    mean, std = statistics.fmean(values), statistics.stdev(values)
    low, high = stats.t.interval(0.95, 4, loc=mean, scale=std / math.sqrt(5))
    assert math.isclose(s.mean, mean) and math.isclose(s.std, std) and s.n == 5
    assert math.isclose(s.ci_low, low) and math.isclose(s.ci_high, high)
    wide = summarize(values, confidence=0.99)
    assert math.isclose(wide.ci_high - wide.mean, stats.t.ppf(0.995, 4) * std / math.sqrt(5))
    two = summarize([0.6, 0.62])
    assert math.isclose(two.ci_high - 0.61, stats.t.ppf(0.975, 1) * statistics.stdev([0.6, 0.62]) / math.sqrt(2))


def test_the_summary_never_leaves_zero_and_one_and_collapses_without_spread():
    top = summarize([1.0, 0.98, 1.0])
    assert top.ci_high == 1.0 and 0.0 < top.ci_low < top.mean
    bottom = summarize([0.0, 0.03, 0.0])
    assert bottom.ci_low == 0.0 and bottom.mean < bottom.ci_high < 1.0
    assert summarize([0.4]) == Summary(0.4, 0.0, 0.4, 0.4, 1)
    assert summarize([0.75, 0.75, 0.75]) == Summary(0.75, 0.0, 0.75, 0.75, 3)
    assert summarize(a for a in [0.2, 0.4]).mean == pytest.approx(0.3)


def test_a_result_as_a_dict_and_as_text():
    s = Summary(0.5, 0.1, 0.375, 0.625, 4)
    assert s.as_dict() == {"mean": 0.5, "std": 0.1, "ci_low": 0.375, "ci_high": 0.625, "n": 4}
    assert str(s) == "0.5000 [0.3750, 0.6250]"
    r = EvaluationResult(
        0.5,
        0.1,
        0.375,
        0.625,
        2,
        accuracies=(0.4, 0.6),
        seeds=(0, 1),
        keys=("a", "b"),
        profile="p",
        noise_scale=2.0,
        t_inference_s=60.0,
        hashes={"model": "h"},
    )
    assert r.summary == s.__class__(0.5, 0.1, 0.375, 0.625, 2)
    assert r.as_dict() == {
        "mean": 0.5,
        "std": 0.1,
        "ci_low": 0.375,
        "ci_high": 0.625,
        "n": 2,
        "accuracies": [0.4, 0.6],
        "seeds": [0, 1],
        "profile": "p",
        "noise_scale": 2.0,
        "t_inference_s": 60.0,
        "hashes": {"model": "h"},
    }


# -- trained models and checkpoints -----------------------------------------------------------------
SPLITS = SimpleNamespace(name="tiny", in_channels=1, num_classes=10)


def write_checkpoint(path: Path, config: TrainConfig, *, seed: int = 0, **meta) -> Path:
    """A finished checkpoint of ``config`` with seeded random weights (no training)."""
    from hwprofiles.nn.qat import to_qat
    from hwprofiles.train.checkpoint import save_checkpoint
    from hwprofiles.train.loop import build_base_model

    model = build_base_model(config, 1, 10)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    if config.method == "qat":
        model = to_qat(model, bits=config.bits, act_scale=config.act_scale)
    payload = {"config": config.to_dict(), "in_channels": 1, "num_classes": 10, "finished": True, **meta}
    save_checkpoint(path, {"state_dict": model.state_dict(), "meta": payload})
    return path


def mlp(**changes) -> TrainConfig:
    return TrainConfig(**{"model": "mlp", "dataset": "tiny", "width": 0.25, "epochs": 1, **changes})


def images(n: int = 64, seed: int = 0, batch: int = 32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]


def test_a_checkpoint_is_rebuilt_with_its_weights(tmp_path):
    path = write_checkpoint(tmp_path / "a.pt", mlp(seed=5), seed=3)
    trained = chips.load_trained(path)
    saved = torch.load(path, weights_only=True)["state_dict"]
    assert trained.model.state_dict().keys() == saved.keys()
    assert all(torch.equal(trained.model.state_dict()[k], saved[k]) for k in saved)
    assert not trained.model.training and trained.path == path and trained.config == mlp(seed=5)
    assert trained.label == "clean" and trained.meta["finished"] is True
    assert trained.description == {"model": "mlp", "width": 0.25, "method": "clean", "bits": 8, "act_scale": 1.0}
    assert trained.digest == model_digest(trained.model, trained.description)
    assert trained.store_labels("tiny/test/all") == {
        "checkpoint": str(path),
        "model": "mlp",
        "method": "clean",
        "train_profile": None,
        "test_set": "tiny/test/all",
    }
    assert chips.load_trained(path, SPLITS).config == trained.config


def test_two_qat_checkpoints_differ_in_their_keys_and_labels(tmp_path):
    a = chips.load_trained(write_checkpoint(tmp_path / "a.pt", mlp(method="qat", act_scale=1.0)))
    b = chips.load_trained(write_checkpoint(tmp_path / "b.pt", mlp(method="qat", act_scale=4.0)))
    assert a.label == b.label == "qat" and a.digest != b.digest
    assert Trained(a.path, a.config, a.model, a.meta, label="mine").label == "mine"


def test_a_checkpoint_that_does_not_fit_is_refused_with_its_name(tmp_path):
    from hwprofiles.train.checkpoint import save_checkpoint

    path = write_checkpoint(tmp_path / "a.pt", mlp())
    with pytest.raises(
        CheckpointError,
        match=r"a.pt: its weights do not fit the model its metadata describes "
        r"\(mlp, width 0.25, 3 input channels, 10 classes\): .*size mismatch",
    ):
        chips.load_trained(path, SimpleNamespace(name="rgb", in_channels=3, num_classes=10))
    state = torch.load(path, weights_only=True)
    del state["meta"]["num_classes"]
    state.pop("format"), state.pop("version")
    save_checkpoint(tmp_path / "b.pt", state)
    with pytest.raises(CheckpointError, match=r"b.pt: its metadata lacks 'num_classes'"):
        chips.load_trained(tmp_path / "b.pt")
    assert chips.load_trained(tmp_path / "b.pt", SPLITS).config == mlp()  # the splits say it
    state["meta"]["config"]["method"] = "plugin-method"  # from a plugin that is not installed here
    save_checkpoint(tmp_path / "c.pt", state)
    with pytest.raises(UnknownNameError, match=r"unknown training method 'plugin-method'"):
        chips.load_trained(tmp_path / "c.pt", SPLITS)


def test_weights_trained_elsewhere_are_labelled_as_such(tmp_path):
    trained = chips.load_trained(write_checkpoint(tmp_path / "a.pt", mlp()))
    torch.save(trained.model.state_dict(), tmp_path / "w.pt")
    theirs = chips.load_weights(tmp_path / "w.pt", "mlp", SPLITS, width=0.25)
    assert theirs.label == "weights:w.pt" and theirs.meta["weights"] == str(tmp_path / "w.pt")
    assert theirs.path == tmp_path / "w.pt" and theirs.meta["config"] == theirs.config.to_dict()
    assert theirs.config.dataset == "tiny" and theirs.config.width == 0.25 and not theirs.model.training
    assert theirs.store_labels("t")["method"] == "external" and theirs.store_labels("t")["model"] == "mlp"
    data = images()
    assert (
        evaluate(theirs.model, data, "ideal", samples=1).accuracies
        == evaluate(trained.model, data, "ideal", samples=1).accuracies
    )
    with pytest.raises(
        CheckpointError,
        match=r"w.pt: its weights do not fit model 'mlp' built for tiny "
        r"\(1 input channels, 10 classes, width 1\): .*size mismatch for .*"
        r"Check --model",
    ):
        chips.load_weights(tmp_path / "w.pt", "mlp", SPLITS)
    three = SimpleNamespace(name="three", in_channels=1, num_classes=3)
    torch.save(hwprofiles.get_model("mlp", in_channels=1, num_classes=3, width=0.25).state_dict(), tmp_path / "w3.pt")
    assert chips.load_weights(tmp_path / "w3.pt", "mlp", three, width=0.25).model(images()[0][0]).shape == (32, 3)


def test_a_checkpoint_is_calibrated_on_its_first_training_batches(tmp_path):
    trained = chips.load_trained(write_checkpoint(tmp_path / "a.pt", mlp()))
    train_batches, test = images(n=224, seed=1), images(seed=2)
    result = evaluate_checkpoint(
        trained,
        "pcm-joshi2020",
        (train_batches, test),
        samples=2,
        noise_scale=3.0,
        t_inference_s=60.0,
        test_set="tiny/test/64",
    )
    calibration = [x for x, _ in islice(train_batches, chips.CALIBRATION_BATCHES)]
    assert chips.CALIBRATION_BATCHES == 4 and len(train_batches) > 4
    pcm = hwprofiles.load_profile("pcm-joshi2020").with_noise_scale(3.0)
    assert list(result.accuracies) == by_hand(trained.model, test, pcm, range(2), t=60.0, calibration=calibration)
    direct = evaluate(
        trained.model,
        test,
        "pcm-joshi2020",
        samples=2,
        noise_scale=3.0,
        t_inference_s=60.0,
        calibration=calibration,
        model_hash=trained.digest,
    )
    assert result.keys == direct.keys and result.hashes == direct.hashes
    request = chips.checkpoint_request(
        trained, "gaussian-additive", (train_batches, test), samples=3, test_set="tiny/test/64", only_layer="layers.2"
    )
    assert request.labels == {"eval_profile": "gaussian-additive", **trained.store_labels("tiny/test/64")}
    assert request.samples == 3 and request.only_layer == "layers.2" and request.hashes["model"] == trained.digest
    assert request.calibration == []  # gaussian-additive does not calibrate


def test_evaluate_checkpoint_stores_what_it_measured(tmp_path):
    trained = chips.load_trained(write_checkpoint(tmp_path / "a.pt", mlp()))
    loaders = (images(seed=1), images(seed=2))
    store = ResultsStore(tmp_path / "r.sqlite")
    ticks = []
    first = evaluate_checkpoint(
        trained,
        "gaussian-additive",
        loaders,
        samples=2,
        store=store,
        only_layer="layers.4",
        on_sample=lambda: ticks.append(1),
        test_set="tiny/test/all",
    )
    again = evaluate_checkpoint(trained, "gaussian-additive", loaders, samples=2, store=store, only_layer="layers.4")
    assert again.accuracies == first.accuracies and again.cached == 2 and len(ticks) == 2
    rows = store.rows("evals")
    assert [(r["layer"], r["checkpoint"], r["test_set"]) for r in rows] == [
        ("layers.4", str(trained.path), "tiny/test/all")
    ] * 2
    default = evaluate_checkpoint(trained, "ideal", loaders, store=store)  # the documented defaults
    assert default.n == 5 and store.rows("evals")[-1]["test_set"] == "test"
    assert chips.checkpoint_request(trained, "ideal", loaders).samples == 5


def test_the_test_set_label():
    splits = SimpleNamespace(name="mnist")
    assert chips.test_set_id(splits, None) == "mnist/test/all" and chips.test_set_id(splits, 500) == "mnist/test/500"


class FailsOnChip(nn.Module):
    """The planted model, whose forward fails from the given chip on (a fault mid-task)."""

    def __init__(self, from_call: int) -> None:
        super().__init__()
        self.net = planted()
        self.calls = 0
        self.from_call = from_call

    def forward(self, x):
        self.calls += 1
        if self.calls > self.from_call:
            raise RuntimeError()  # no message: the failure is named by its type
        return self.net(x)


def test_in_this_process_each_chip_is_stored_the_moment_it_is_measured(tmp_path):
    data = task()  # three batches: chip 0 takes three forwards, chip 1 fails on its first
    faulty = prepare(FailsOnChip(from_call=3), data, "ideal", samples=3, labels={"model": "faulty"})
    good = prepare(planted(), data, "ideal", samples=1)
    store = ResultsStore(tmp_path / "r.sqlite")
    stats = GridStats()
    results = run_requests([faulty, good], store=store, stats=stats)
    assert results[0] is None and results[1].accuracies == (1.0,)
    assert stats.failures[0].error == "RuntimeError" and stats.failures[0].name.startswith("faulty under ideal")
    assert store.get_eval(faulty.keys[0]) == 1.0 and store.get_eval(faulty.keys[1]) is None  # chip 0 kept


class AllAtOnce:
    """Starts every task before any ends, like a cluster with room for all of them."""

    name = "cluster"

    def map(self, fn, tasks, on_result, *, devices=None, on_start=None):
        for index in range(len(tasks)):
            on_start(index)
        for index, task in enumerate(tasks):
            try:
                on_result(index, fn(*task), None)
            except RuntimeError as exc:  # a task's own fault
                on_result(index, None, exc)


def test_progress_counts_tasks_running_at_once_and_stats_add_up_over_calls():
    data = task()
    requests = [
        prepare(planted(), data, "ideal", samples=1),
        prepare(Broken(), data, "ideal", samples=1),
        prepare(Broken(), data, "ideal", samples=2),
        prepare(planted(), data, "ideal", samples=2),
    ]
    progress, stats = [], GridStats()
    before = time.perf_counter()
    results = run_requests(requests, executor=AllAtOnce(), stats=stats, on_progress=lambda *c: progress.append(c))
    elapsed = time.perf_counter() - before
    assert [r is None for r in results] == [False, True, True, False]
    assert progress == [
        (0, 0, 0),
        (0, 1, 0),
        (0, 2, 0),
        (0, 3, 0),
        (0, 4, 0),
        (1, 3, 0),
        (1, 2, 1),
        (1, 1, 2),
        (2, 0, 2),
    ]
    assert 0 < stats.compute_s <= stats.wall_s <= elapsed  # one process: compute time within the wall time
    first = (stats.requests, stats.chips_measured, stats.compute_s, stats.wall_s)
    run_requests(requests[:1], stats=stats)
    assert stats.requests == first[0] + 1 and stats.chips_measured == first[1] + 1
    assert stats.compute_s > first[2] and stats.wall_s > first[3] and len(stats.failures) == 2
