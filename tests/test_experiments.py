"""Training, checkpoints, evaluation over chip instances, the results store, transfer."""

from __future__ import annotations

import math

import pytest
import torch

from hwprofiles.errors import CheckpointError
from hwprofiles.eval.chips import Summary, evaluate_checkpoint, load_trained, summarize
from hwprofiles.eval.sweep import log_grid, midpoint
from hwprofiles.eval.transfer import TransferResult
from hwprofiles.results import ResultsStore
from hwprofiles.train import TrainConfig, TrainingDivergedError, load_checkpoint, train


def config(**overrides) -> TrainConfig:
    base = dict(model="lenet5", dataset="synthetic", width=0.5, epochs=1, batch_size=32, lr=5e-3, seed=3)
    return TrainConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    "method,extra",
    [
        ("clean", {}),
        ("qat", {"bits": 4, "act_scale": 0.25}),
        ("qat-learned", {}),
        ("nit", {"profile": "gaussian-additive"}),
        ("nit", {"profile": "pcm-joshi2020", "schedule": "ramp"}),
        ("vant", {"profile": "gaussian-additive"}),
    ],
)
def test_every_method_trains_and_learns(tmp_path, synthetic, loaders, method, extra):
    result = train(config(method=method, epochs=2, **extra), tmp_path / "m.pt", data=synthetic, progress=False)
    assert result.test_accuracy > 0.3  # 10 classes: chance is 0.1
    trained = load_trained(tmp_path / "m.pt", synthetic)
    assert trained.label == (method if method in ("clean", "qat", "qat-learned") else f"{method}:{extra['profile']}")
    # Under `ideal` the evaluation must give the trained model's own accuracy: for QAT the
    # quantized model as it was trained and tested (weights fake-quantized on the fly there,
    # baked once here), for NIT and VANT the float weights with the training noise removed.
    # Both sides are exact counts over the same test set, so they must agree exactly.
    ideal = evaluate_checkpoint(trained, "ideal", loaders, samples=1)
    assert ideal.n == 1 and ideal.std == 0
    assert ideal.mean == own_accuracy(tmp_path / "m.pt", synthetic, loaders)
    if method in ("clean", "qat", "qat-learned"):
        assert ideal.mean == result.test_accuracy  # what training reported for this checkpoint


def own_accuracy(path, synthetic, loaders) -> float:
    """The trained model's accuracy without any device, rebuilt the way training built it."""
    from hwprofiles import to_clean
    from hwprofiles.train.loop import accuracy, build_base_model
    from hwprofiles.train.methods import prepare_for_training

    state = load_checkpoint(path)
    cfg = TrainConfig.from_dict(state["meta"]["config"])
    model = prepare_for_training(build_base_model(cfg, synthetic.in_channels, synthetic.num_classes), cfg)
    model.load_state_dict(state["state_dict"])
    if cfg.method in ("nit", "vant"):
        model = to_clean(model)  # the float layers under the noisy twins
    return accuracy(model.eval(), loaders[1])


def test_resumed_run_ends_with_the_same_weights(tmp_path, synthetic):
    cfg = config(method="nit", profile="pcm-joshi2020", epochs=2)
    train(cfg, tmp_path / "straight.pt", data=synthetic, progress=False)
    train(cfg, tmp_path / "resumed.pt", data=synthetic, progress=False)
    # Interrupt after epoch 1: write an epoch-1 checkpoint by training a 1-epoch prefix...
    state = load_checkpoint(tmp_path / "resumed.pt")
    assert state["epoch"] == 2
    one = config(method="nit", profile="pcm-joshi2020", epochs=2)
    path = tmp_path / "interrupted.pt"
    # ...by stopping the loop after its first checkpoint.
    from hwprofiles.train import loop

    calls = {"n": 0}
    real_save = loop.save_checkpoint

    def save_then_stop(p, payload):
        real_save(p, payload)
        calls["n"] += 1
        raise KeyboardInterrupt

    loop.save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(one, path, data=synthetic, progress=False)
    finally:
        loop.save_checkpoint = real_save
    assert load_checkpoint(path)["epoch"] == 1
    result = train(one, path, resume=True, data=synthetic, progress=False)
    assert result.resumed_from_epoch == 1
    straight = load_checkpoint(tmp_path / "straight.pt")["state_dict"]
    resumed = load_checkpoint(path)["state_dict"]
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_resume_refuses_another_configuration(tmp_path, synthetic):
    from hwprofiles.errors import HwProfilesError

    train(config(), tmp_path / "m.pt", data=synthetic, progress=False)
    with pytest.raises(HwProfilesError, match="another configuration"):
        train(config(lr=0.5), tmp_path / "m.pt", resume=True, data=synthetic, progress=False)


def test_nan_loss_stops_with_a_clear_message(tmp_path, synthetic):
    cfg = config(method="nit", profile="gaussian-additive", noise_scale=1e38)
    with pytest.raises(TrainingDivergedError, match="loss became"):
        train(cfg, tmp_path / "m.pt", data=synthetic, progress=False)


def test_checkpoint_metadata(tmp_path, synthetic):
    train(config(method="qat", bits=4), tmp_path / "m.pt", data=synthetic, progress=False)
    meta = load_checkpoint(tmp_path / "m.pt")["meta"]
    assert meta["config"]["method"] == "qat" and meta["config"]["bits"] == 4 and meta["config"]["seed"] == 3
    assert {"hwprofiles", "torch", "python"} <= set(meta["versions"])
    assert meta["finished"] is True


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "torch-other", "pickled-object"])
def test_malformed_checkpoints_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    if content == "torch-other":
        torch.save({"weights": torch.zeros(2)}, path)
    elif content == "pickled-object":
        torch.save({"format": "hwprofiles-checkpoint", "obj": object.__new__(Summary)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(path)


def test_results_store_skips_measured_instances(tmp_path, synthetic, loaders, monkeypatch):
    train(config(), tmp_path / "m.pt", data=synthetic, progress=False)
    trained = load_trained(tmp_path / "m.pt", synthetic)
    store = ResultsStore(tmp_path / "r.sqlite")
    first = evaluate_checkpoint(trained, "gaussian-additive", loaders, samples=3, store=store)
    calls = []
    from hwprofiles.train import loop

    real = loop.accuracy
    monkeypatch.setattr(loop, "accuracy", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = evaluate_checkpoint(trained, "gaussian-additive", loaders, samples=3, store=store)
    assert calls == [] and again == first
    more = evaluate_checkpoint(trained, "gaussian-additive", loaders, samples=4, store=store)
    assert len(calls) == 1 and more.n == 4  # only the new chip instance was measured
    store.close()
    reopened = ResultsStore(tmp_path / "r.sqlite")
    assert len(reopened.rows("evals")) == 4


def test_chip_instances_are_reproducible_and_differ(tmp_path, synthetic, loaders):
    train(config(), tmp_path / "m.pt", data=synthetic, progress=False)
    trained = load_trained(tmp_path / "m.pt", synthetic)
    a = evaluate_checkpoint(trained, "gaussian-additive", loaders, samples=4, noise_scale=20.0)
    b = evaluate_checkpoint(trained, "gaussian-additive", loaders, samples=4, noise_scale=20.0)
    assert a == b
    assert a.std > 0


def test_summary_confidence_interval_matches_scipy():
    from scipy import stats

    values = [0.8, 0.82, 0.79, 0.85, 0.81]
    s = summarize(values)
    low, high = stats.t.interval(0.95, 4, loc=sum(values) / 5, scale=stats.sem(values))
    assert math.isclose(s.ci_low, low) and math.isclose(s.ci_high, high)
    assert summarize([0.5]).ci_low == 0.5


def test_midpoint_interpolates_in_log_scale():
    grid = log_grid(1e-2, 1e2, 17)
    assert (
        len(grid) == 17 and math.isclose(grid[0], 1e-2) and math.isclose(grid[-1], 1e2) and math.isclose(grid[8], 1.0)
    )
    # Accuracy falls linearly in log10(sigma) from 0.9 at 1e-2 to 0.1 at 1e2: halfway (0.5) at sigma = 1.
    accs = [0.9 - 0.8 * (math.log10(s) + 2) / 4 for s in grid]
    assert math.isclose(midpoint(grid, accs, clean=0.9, chance=0.1), 1.0, rel_tol=1e-9)
    assert midpoint([0.1, 1, 10], [0.9, 0.9, 0.9], clean=0.9, chance=0.1) is None


def _summary(mean: float) -> Summary:
    return Summary(mean, 0.01, mean - 0.01, mean + 0.01, 3)


def test_transfer_matrix_shape_and_normalisation():
    rows = ["clean", "qat", "nit:a", "nit:b"]
    cols = ["ideal", "a", "b"]
    acc = {"clean": [0.9, 0.5, 0.4], "qat": [0.9, 0.6, 0.5], "nit:a": [0.88, 0.8, 0.6], "nit:b": [0.87, 0.7, 0.75]}
    cells = {(r, c): _summary(acc[r][j]) for r in rows for j, c in enumerate(cols)}
    result = TransferResult(rows, cols, cells, {c: 1.0 for c in cols}, "published")
    assert [len(r) for r in result.accuracy()] == [3, 3, 3, 3]
    eff = result.efficiency()
    assert eff[0][0] is None  # no model was trained under `ideal`
    assert math.isclose(eff[0][1], 0.5 / 0.8) and math.isclose(eff[2][1], 1.0) and math.isclose(eff[2][2], 0.6 / 0.75)
    value, row, col = result.worst_off_diagonal()
    assert (row, col) == ("nit:a", "b") and math.isclose(value, 0.6 / 0.75)
    assert "| nit:a |" in result.to_markdown() and result.to_csv().count("\n") == 1 + 12
