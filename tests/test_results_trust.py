"""Numbers traceable to what produced them: content keys, unique labels, intervals, evaluate().

Each test reproduces a way the results store or a report could hand back a wrong or
surprising number, and checks the right one comes back.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from itertools import islice

import pytest
import torch
import torch.nn as nn
from test_cli_experiments import failed, ok  # noqa: F401 - shared CLI assertions

import hwprofiles
from hwprofiles.errors import CheckpointError, HwProfilesError, ResultsStoreError
from hwprofiles.eval import chips, evaluate, evaluate_checkpoint, load_trained, summarize
from hwprofiles.eval.sweep import midpoint, run_sweep
from hwprofiles.results import ResultsStore
from hwprofiles.train import TrainConfig, train

K = 3
TRAIN_CLI = [
    "train",
    "--dataset",
    "synthetic",
    "--model",
    "lenet5",
    "--width",
    "0.5",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--quiet",
]
NOISY = dict(noise_scale=15.0)  # gaussian-additive at sigma 1.5: accuracy well below clean, chip to chip


def config(**overrides) -> TrainConfig:
    base = dict(model="lenet5", dataset="synthetic", width=0.5, epochs=3, batch_size=32, lr=5e-3, seed=3)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, synthetic):
    """Two clean models of different seeds and two QAT models of different activation scales."""
    root = tmp_path_factory.mktemp("ckpt")
    made = {}
    for name, cfg in {
        "a": config(seed=1),
        "b": config(seed=2),
        "qat1": config(method="qat", act_scale=1.0),
        "qat4": config(method="qat", act_scale=4.0),
    }.items():
        train(cfg, root / f"{name}.pt", data=synthetic, progress=False)
        made[name] = root / f"{name}.pt"
    return made


def counting(monkeypatch):
    calls = []
    from hwprofiles.train import loop

    real = loop.accuracy
    monkeypatch.setattr(loop, "accuracy", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


# -- 1. the store keys on content ---------------------------------------------------------
def test_an_overwritten_checkpoint_is_measured_afresh(tmp_path, synthetic, loaders, checkpoints):
    store = ResultsStore(tmp_path / "r.sqlite")
    path = tmp_path / "m.pt"
    shutil.copy(checkpoints["a"], path)
    first = evaluate_checkpoint(
        load_trained(path, synthetic), "gaussian-additive", loaders, samples=K, store=store, **NOISY
    )
    shutil.copy(checkpoints["b"], path)  # another model under the same name
    second = evaluate_checkpoint(
        load_trained(path, synthetic), "gaussian-additive", loaders, samples=K, store=store, **NOISY
    )
    fresh = evaluate_checkpoint(
        load_trained(checkpoints["b"], synthetic), "gaussian-additive", loaders, samples=K, **NOISY
    )
    assert second.accuracies == fresh.accuracies != first.accuracies
    assert len(store.rows("evals")) == 2 * K


def test_an_edited_profile_is_measured_afresh(tmp_path, synthetic, loaders, checkpoints):
    store = ResultsStore(tmp_path / "r.sqlite")
    trained = load_trained(checkpoints["a"], synthetic)
    profile_file = tmp_path / "mine.yaml"
    text = hwprofiles.dump_profile(hwprofiles.load_profile("gaussian-additive")).replace(
        "name: gaussian-additive", "name: mine"
    )
    profile_file.write_text(text)
    low = evaluate_checkpoint(trained, profile_file, loaders, samples=K, store=store)
    edited = hwprofiles.load_profile(profile_file).model_dump(mode="json")
    edited["noise"][0]["sigma"] = 3.0  # same name, thirty times the noise
    profile_file.write_text(hwprofiles.dump_profile(hwprofiles.parse_profile(edited)))
    high = evaluate_checkpoint(trained, profile_file, loaders, samples=K, store=store)
    fresh = evaluate_checkpoint(trained, profile_file, loaders, samples=K)
    assert high.accuracies == fresh.accuracies and high.mean < low.mean - 0.2


def test_one_checkpoint_under_two_spellings_is_measured_once(tmp_path, synthetic, loaders, checkpoints, monkeypatch):
    store = ResultsStore(tmp_path / "r.sqlite")
    shutil.copy(checkpoints["a"], tmp_path / "x.pt")
    monkeypatch.chdir(tmp_path)
    first = evaluate_checkpoint(load_trained("x.pt", synthetic), "gaussian-additive", loaders, samples=K, store=store)
    calls = counting(monkeypatch)
    again = evaluate_checkpoint(
        load_trained(tmp_path / "x.pt", synthetic), "gaussian-additive", loaders, samples=K, store=store
    )
    assert calls == [] and again == first and again.cached == K
    assert len(store.rows("evals")) == K


def test_the_key_holds_the_inference_time(tmp_path, synthetic, loaders, checkpoints, monkeypatch):
    store = ResultsStore(tmp_path / "r.sqlite")
    trained = load_trained(checkpoints["a"], synthetic)
    args = dict(samples=2, noise_scale=8.0)
    early = evaluate_checkpoint(trained, "pcm-joshi2020", loaders, t_inference_s=1.0, store=store, **args)
    calls = counting(monkeypatch)
    late = evaluate_checkpoint(trained, "pcm-joshi2020", loaders, t_inference_s=3e7, store=store, **args)
    assert len(calls) == 2 and late.t_inference_s == 3e7 and early.keys != late.keys
    assert (
        late.accuracies == evaluate_checkpoint(trained, "pcm-joshi2020", loaders, t_inference_s=3e7, **args).accuracies
    )
    assert sorted({r["t_inference_s"] for r in store.rows("evals")}) == [1.0, 3e7]


def test_the_key_holds_the_single_noisy_layer(tmp_path, synthetic, loaders, checkpoints, monkeypatch):
    store = ResultsStore(tmp_path / "r.sqlite")
    trained = load_trained(checkpoints["a"], synthetic)
    every = evaluate_checkpoint(trained, "gaussian-additive", loaders, samples=K, store=store, **NOISY)
    calls = counting(monkeypatch)
    one = evaluate_checkpoint(
        trained, "gaussian-additive", loaders, samples=K, store=store, only_layer="<input>", **NOISY
    )
    assert len(calls) == K and one.mean > every.mean  # noise in one place hurts less than everywhere
    assert (
        one.accuracies
        == evaluate_checkpoint(
            trained, "gaussian-additive", loaders, samples=K, only_layer="<input>", **NOISY
        ).accuracies
    )
    assert sorted({r["layer"] for r in store.rows("evals")}) == ["", "<input>"]


def test_a_time_sweep_evaluates_at_each_time(synthetic, loaders, checkpoints):
    trained = load_trained(checkpoints["a"], synthetic)
    times = [1.0, 3e7]
    report = run_sweep(
        [trained],
        hwprofiles.load_profile("pcm-joshi2020").with_noise_scale(8.0),
        loaders,
        over="time",
        grid=times,
        samples=2,
    )
    points = report.curves[trained.label]
    assert [x for x, _ in points] == times and [r.t_inference_s for _, r in points] == times
    assert points[0][1].hashes["profile"] != points[1][1].hashes["profile"]


def test_an_older_name_keyed_database_is_refused(tmp_path):
    old = tmp_path / "old.sqlite"
    db = sqlite3.connect(old)
    db.execute("CREATE TABLE evals (checkpoint TEXT, eval_profile TEXT, accuracy REAL)")
    db.execute("INSERT INTO evals VALUES ('m.pt', 'ideal', 0.9)")
    db.commit()
    db.close()
    with pytest.raises(ResultsStoreError, match="old.sqlite.*cannot be traced.*new file"):
        ResultsStore(old)
    (tmp_path / "text.sqlite").write_text("not a database")
    with pytest.raises(ResultsStoreError, match="text.sqlite: not a hwprofiles results database"):
        ResultsStore(tmp_path / "text.sqlite")
    assert sqlite3.connect(old).execute("SELECT COUNT(*) FROM evals").fetchone() == (1,)  # left as it was


def test_exported_rows_say_what_each_number_is(tmp_path, synthetic, loaders, checkpoints):
    from datetime import datetime

    store = ResultsStore(tmp_path / "r.sqlite")
    trained = load_trained(checkpoints["qat4"], synthetic)
    result = evaluate_checkpoint(
        trained, "gaussian-additive", loaders, samples=2, store=store, test_set="synthetic/test/all"
    )
    rows = store.rows("evals")
    assert [r["accuracy"] for r in rows] == list(result.accuracies)
    row = rows[0]
    assert (row["model"], row["method"], row["eval_profile"], row["test_set"]) == (
        "lenet5",
        "qat",
        "gaussian-additive",
        "synthetic/test/all",
    )
    assert row["model_hash"] == trained.digest and row["profile_hash"] == result.hashes["profile"]
    assert all(len(row[k]) == 64 for k in ("key", "model_hash", "profile_hash", "data_hash"))
    assert datetime.fromisoformat(row["created"]).tzinfo is not None


# -- intervals, midpoints, calibration data -------------------------------------------------
def test_intervals_stay_inside_zero_and_one():
    high = summarize([1.0, 1.0, 0.9])
    low = summarize([0.0, 0.0, 0.1])
    assert high.ci_high == 1.0 and 0.0 < high.ci_low < high.mean
    assert low.ci_low == 0.0 and low.mean < low.ci_high < 1.0


def test_the_midpoint_is_interpolated_in_log_scale():
    # Half level 0.5 lies a quarter of the way from 0.9 to 0.1 ... in log10(scale) from 1 to 100:
    # 10 ** (2 * 0.5) = 10 in log scale, where a linear interpolation would give 50.5.
    assert math.isclose(midpoint([1.0, 100.0], [0.9, 0.1], clean=0.9, chance=0.1), 10.0)


def test_dacs_are_calibrated_on_training_batches_not_test_batches(synthetic, loaders, checkpoints, monkeypatch):
    import hwprofiles.nn.convert as convert

    seen = []
    real = convert.calibrate
    monkeypatch.setattr(
        convert, "calibrate", lambda model, batches: seen.append([b.clone() for b in batches]) or real(model, seen[-1])
    )
    evaluate_checkpoint(load_trained(checkpoints["a"], synthetic), "pcm-joshi2020", loaders, samples=1)
    train_batches = [x for x, _ in islice(loaders.train, chips.CALIBRATION_BATCHES)]
    assert len(seen) == 1 and len(seen[0]) == len(train_batches)
    assert all(torch.equal(a, b) for a, b in zip(seen[0], train_batches))


# -- 4. bring your own model -----------------------------------------------------------------
def _tiny_task(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 8, generator=g)
    y = (x[:, 0] > 0).long()
    return [(x[i : i + 32], y[i : i + 32]) for i in range(0, 96, 32)]


def test_evaluate_takes_any_module_and_any_iterable(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    data = _tiny_task()
    store = ResultsStore(tmp_path / "r.sqlite")
    result = evaluate(model, data, "gaussian-additive", samples=4, store=store, labels={"model": "mine"})
    assert result.n == 4 and len(result.accuracies) == 4 and len(set(result.keys)) == 4
    assert result.ci_low <= result.mean <= result.ci_high
    one_shot = evaluate(model, iter(data), "gaussian-additive", samples=4)  # a generator is read once, kept
    assert one_shot.accuracies == result.accuracies
    assert [r["model"] for r in store.rows("evals")] == ["mine"] * 4
    again = evaluate(model, data, "gaussian-additive", samples=4, store=store)
    assert again.cached == 4 and again.accuracies == result.accuracies


def test_evaluate_asks_for_calibration_data_where_the_profile_needs_it():
    model = nn.Sequential(nn.Linear(8, 2))
    data = _tiny_task()
    with pytest.raises(HwProfilesError, match="calibration="):
        evaluate(model, data, "pcm-joshi2020", samples=1)
    result = evaluate(model, data, "pcm-joshi2020", samples=1, calibration=_tiny_task(seed=1))
    assert result.hashes["calibration"] != ""
    with pytest.raises(HwProfilesError, match="no noisy layer named 'nope'"):
        evaluate(model, data, "gaussian-additive", samples=1, only_layer="nope")


# -- through the command line ------------------------------------------------------------------
@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sweep_keeps_every_checkpoint_of_one_method(cli, workdir, checkpoints):
    for name in ("a", "qat1", "qat4"):
        shutil.copy(checkpoints[name], workdir / f"{name}.pt")
    ok(cli("sweep", "a.pt", "qat1.pt", "qat4.pt", "--points", "3", "-k", "2", "--quiet", "-o", "sw"))
    report = json.loads((workdir / "sw" / "sweep-noise-gaussian-additive.json").read_text())
    assert sorted(report["models"]) == ["clean", "qat[act_scale=1]", "qat[act_scale=4]"]
    ok(cli("eval", "qat1.pt", "qat4.pt", "qat4.pt", "-p", "ideal", "-k", "1", "--quiet", "--json-out", "e.json"))
    labels = [r["trained"] for r in json.loads((workdir / "e.json").read_text())]
    assert labels == ["qat[act_scale=1]", "qat[act_scale=4]", "qat[act_scale=4]#2"]


def test_sweep_accuracies_are_those_of_the_evaluation(cli, workdir, synthetic, checkpoints):
    shutil.copy(checkpoints["a"], workdir / "a.pt")
    ok(cli("sweep", "a.pt", "--low", "1", "--high", "100", "--points", "3", "-k", "2", "--quiet", "-o", "sw"))
    points = json.loads((workdir / "sw" / "sweep-noise-gaussian-additive.json").read_text())["models"]["clean"][
        "points"
    ]
    trained = load_trained(workdir / "a.pt", synthetic)
    from hwprofiles.data import make_loaders

    cli_loaders = make_loaders(synthetic, 256, seed=0, shuffle=False)  # the batches the CLI evaluates in
    for point in points:
        expected = evaluate_checkpoint(trained, "gaussian-additive", cli_loaders, samples=2, noise_scale=point["x"])
        assert point["accuracies"] == list(expected.accuracies)
    assert points[0]["mean"] > 0.8 > 0.3 > points[-1]["mean"]  # sigma 0.1 barely hurts, sigma 10 destroys


def test_weights_trained_elsewhere_are_evaluated_and_swept(cli, workdir, synthetic, checkpoints, monkeypatch):
    trained = load_trained(checkpoints["a"], synthetic)
    torch.save(trained.model.state_dict(), workdir / "w.pt")
    ok(
        cli(
            "eval",
            "--model",
            "lenet5",
            "--width",
            "0.5",
            "--weights",
            "w.pt",
            "--dataset",
            "synthetic",
            "-p",
            "ideal",
            "-k",
            "1",
            "--quiet",
            "--json-out",
            "w.json",
        )
    )
    shutil.copy(checkpoints["a"], workdir / "a.pt")
    ok(cli("eval", "a.pt", "-p", "ideal", "-k", "1", "--quiet", "--json-out", "a.json"))
    mine, theirs = (json.loads((workdir / f).read_text())[0] for f in ("w.json", "a.json"))
    assert mine["trained"] == "weights:w.pt" and mine["mean"] == theirs["mean"]

    (workdir / "mynets.py").write_text(
        "from hwprofiles.models import get_model\n"
        "def build(num_classes, in_channels):\n"
        "    return get_model('lenet5', num_classes=num_classes, in_channels=in_channels, width=0.5)\n"
    )
    monkeypatch.syspath_prepend(str(workdir))
    result = ok(
        cli(
            "sweep",
            "--model",
            "mynets:build",
            "--weights",
            "w.pt",
            "--dataset",
            "synthetic",
            "--points",
            "2",
            "-k",
            "1",
            "--quiet",
            "-o",
            "sw",
        )
    )
    assert "weights:w.pt" in result.stdout

    result = failed(cli("eval", "--model", "lenet5", "--weights", "w.pt", "--dataset", "synthetic", "-p", "ideal"))
    assert "w.pt: its weights do not fit model 'lenet5'" in result.stderr and "--width" in result.stderr
    result = cli("eval", "--weights", "w.pt", "-p", "ideal")
    assert result.exit_code == 2 and "--weights needs --model" in result.stderr


def test_load_weights_names_a_file_without_a_state_dict(tmp_path, synthetic):
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="list.pt: holds no state dict"):
        chips.load_weights(tmp_path / "list.pt", "lenet5", synthetic)


def test_export_refuses_a_database_that_does_not_exist(cli, workdir):
    result = failed(cli("results", "export", "--results", "typo.sqlite"))
    assert "typo.sqlite: no such results database" in result.stderr and not (workdir / "typo.sqlite").exists()


@pytest.mark.parametrize("damage", ["other-architecture", "empty-state-dict", "meta-without-config"])
def test_a_checkpoint_that_does_not_fit_its_model_is_named(cli, workdir, checkpoints, damage):
    from hwprofiles.train.checkpoint import save_checkpoint

    state = torch.load(checkpoints["a"], weights_only=True)
    if damage == "other-architecture":
        state["state_dict"] = hwprofiles.get_model("mlp", in_channels=1, num_classes=10).state_dict()
    elif damage == "empty-state-dict":
        state["state_dict"] = {}
    else:
        del state["meta"]["config"]
    state.pop("format"), state.pop("version")
    save_checkpoint(workdir / "bad.pt", state)
    for args in (
        ["eval", "bad.pt", "-p", "ideal"],
        ["sweep", "bad.pt", "--points", "2"],
        ["sweep", "bad.pt", "--over", "time", "-p", "pcm-joshi2020"],
        ["sweep", "bad.pt", "--over", "layer"],
    ):
        result = failed(cli(*args, "-k", "1", "--quiet"))
        assert "bad.pt: " in result.stderr
        assert ("lacks" if damage == "meta-without-config" else "do not fit") in result.stderr


@pytest.mark.parametrize("damage", ["other-architecture", "empty-state-dict", "no-optimizer"])
def test_resuming_a_checkpoint_that_does_not_fit_is_a_clean_error(cli, workdir, damage):
    from hwprofiles.train.checkpoint import save_checkpoint

    ok(cli(*TRAIN_CLI, "-o", "m.pt"))
    state = torch.load(workdir / "m.pt", weights_only=True)
    if damage == "other-architecture":
        state["state_dict"] = hwprofiles.get_model("mlp", in_channels=1, num_classes=10).state_dict()
    elif damage == "empty-state-dict":
        state["state_dict"] = {}
    else:
        del state["optimizer"]
    state.pop("format"), state.pop("version")
    save_checkpoint(workdir / "m.pt", state)
    result = failed(cli(*TRAIN_CLI, "-o", "m.pt", "--resume"))  # the same configuration: loading is what fails
    assert "m.pt: does not fit the model, optimizer or schedule" in result.stderr and "Train afresh" in result.stderr
