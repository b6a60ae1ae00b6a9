"""--log mlflow / --log tensorboard: what a user finds in the tracker after a run.

MLflow is read back through its client from a local file store, TensorBoard through its
own event reader; the numbers are compared with what the run wrote to its checkpoint or
JSON report, so a tracker that records the wrong values (or the wrong steps) fails.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
pytest.importorskip("tensorboard")

EPOCHS = 3
TRAIN = (
    "train --dataset synthetic --model lenet5 --width 0.5 --batch-size 64 --train-subset 128 --test-subset 64 "
    f"--lr 5e-3 --quiet --epochs {EPOCHS}"
).split()
HIST = ("train_loss", "train_accuracy", "test_accuracy")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE"):
        monkeypatch.setenv(name, "-")  # so that the test's end restores them, whatever the run sets
        monkeypatch.delenv(name)
    return tmp_path


def ok(result):
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def failed(result):
    assert result.exit_code != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error:"), result.stderr
    return result


def mlflow_runs(uri: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("hwprofiles")
    assert experiment is not None, "no hwprofiles experiment in the store"
    return client, client.search_runs([experiment.experiment_id])


def history_of(checkpoint: Path) -> list[dict[str, float]]:
    from hwprofiles.train import load_checkpoint

    return load_checkpoint(checkpoint)["history"]


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run,) = [p for p in (logdir / "tensorboard").iterdir() if p.is_dir()]
    events = EventAccumulator(str(run))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_training_run_in_mlflow_has_its_params_epochs_and_checkpoint(cli, workdir):
    uri = (workdir / "store").as_uri()
    ok(cli(*TRAIN, "-o", "runs/m.pt", "--log", "mlflow", "--log-uri", uri))
    client, (run,) = mlflow_runs(uri)
    assert run.info.run_name == "m" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["model"] == "lenet5" and params["epochs"] == str(EPOCHS) and params["lr"] == "0.005"
    assert params["method"] == "clean" and params["dataset"] == "synthetic"
    assert run.data.tags["command"] == "train"
    history = history_of(workdir / "runs" / "m.pt")
    for name in HIST:
        logged = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
        assert logged == [(h["epoch"], pytest.approx(h[name])) for h in history]
        assert len(logged) == EPOCHS
    (artifact,) = client.list_artifacts(run.info.run_id, "checkpoints")
    assert artifact.path == "checkpoints/m.pt"
    local = client.download_artifacts(run.info.run_id, artifact.path, str(workdir))
    assert Path(local).read_bytes() == (workdir / "runs" / "m.pt").read_bytes()


def test_mlflow_records_into_its_own_tracking_uri_variable_or_the_default_store(cli, workdir):
    uri = (workdir / "from-env").as_uri()
    ok(cli(*TRAIN, "--epochs", "1", "-o", "a.pt", "--log", "mlflow", env={"MLFLOW_TRACKING_URI": uri}))
    assert len(mlflow_runs(uri)[1]) == 1
    ok(cli(*TRAIN, "--epochs", "1", "-o", "b.pt", "--log", "mlflow"))
    _, runs = mlflow_runs((workdir / "hwprofiles-out" / "mlruns").as_uri())
    assert [r.info.run_name for r in runs] == ["b"]


def test_an_interrupted_run_is_marked_failed_and_its_resumption_reports_the_remaining_epochs(cli, workdir, monkeypatch):
    from hwprofiles.errors import HwProfilesError
    from hwprofiles.tracking import Trackers

    log_epoch = Trackers.log_epoch

    def stop_after_first(self, entry):
        log_epoch(self, entry)
        raise HwProfilesError("interrupted")

    uri = (workdir / "store").as_uri()
    monkeypatch.setattr(Trackers, "log_epoch", stop_after_first)
    failed(cli(*TRAIN, "-o", "m.pt", "--log", "mlflow", "--log-uri", uri))
    monkeypatch.setattr(Trackers, "log_epoch", log_epoch)
    ok(cli(*TRAIN, "-o", "m.pt", "--resume", "--log", "mlflow", "--log-uri", uri))
    client, runs = mlflow_runs(uri)
    steps = {r.info.status: [m.step for m in client.get_metric_history(r.info.run_id, "test_accuracy")] for r in runs}
    assert steps == {"FAILED": [1], "FINISHED": list(range(2, EPOCHS + 1))}


def test_a_training_run_in_tensorboard_has_a_scalar_per_epoch(cli, workdir):
    ok(cli(*TRAIN, "-o", "runs/m.pt", "--log", "tensorboard"))
    history = history_of(workdir / "runs" / "m.pt")
    logged = scalars(workdir / "runs")
    assert set(HIST) <= set(logged)
    for name in HIST:
        assert logged[name] == [(h["epoch"], pytest.approx(h[name])) for h in history]


def test_an_evaluation_grid_is_logged_cell_by_cell_in_both_trackers(cli, workdir):
    ok(cli(*TRAIN, "--epochs", "1", "-o", "m.pt"))
    uri = (workdir / "store").as_uri()
    ok(
        cli(
            "eval", "m.pt", "-p", "ideal", "-p", "gaussian-additive", "-k", "2", "--quiet",
            "--json-out", "res/eval.json", "--log", "mlflow", "--log", "tensorboard", "--log-uri", uri,
        )
    )  # fmt: skip
    rows = json.loads((workdir / "res" / "eval.json").read_text())
    assert len(rows) == 2
    client, (run,) = mlflow_runs(uri)
    assert run.data.params["profiles"] == "['ideal', 'gaussian-additive']" and run.data.params["samples"] == "2"
    tb = scalars(workdir / "res")
    for row in rows:
        for stat in ("mean", "ci_low", "ci_high"):
            name = f"eval/{row['trained']}/{row['eval_profile']}/{stat}"
            assert run.data.metrics[name] == pytest.approx(row[stat])
            assert tb[name] == [(0, pytest.approx(row[stat]))]
    report = client.download_artifacts(run.info.run_id, "eval.json", str(workdir))
    assert json.loads(Path(report).read_text()) == rows


def test_a_sweep_logs_each_grid_point_as_a_step(cli, workdir):
    ok(cli(*TRAIN, "--epochs", "1", "-o", "m.pt"))
    args = "sweep m.pt -p gaussian-additive --low 0.1 --high 10 --points 3 -k 2 --quiet -o sw --log tensorboard"
    ok(cli(*args.split()))
    (report,) = (workdir / "sw").glob("sweep-noise-*.json")
    points = json.loads(report.read_text())["models"]["clean"]["points"]
    tb = scalars(workdir / "sw")
    assert tb["sweep/clean/accuracy"] == [(i, pytest.approx(p["mean"])) for i, p in enumerate(points)]
    assert [v for _, v in tb["sweep/clean/noise_scale"]] == pytest.approx([0.1, 1.0, 10.0])


@pytest.mark.parametrize("kind, package", [("mlflow", "mlflow"), ("tensorboard", "tensorboard")])
def test_a_missing_tracker_package_names_the_extra_before_any_work(cli, workdir, monkeypatch, kind, package):
    for name in list(sys.modules):
        if name == package or name.startswith(package + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    result = failed(cli(*TRAIN, "-o", "m.pt", "--log", kind))
    assert f"--log {kind} needs" in result.stderr and "pip install 'hwprofiles[tracking]'" in result.stderr
    assert not (workdir / "m.pt").exists()


def test_bad_tracking_options_are_clean_errors(cli, workdir):
    result = failed(cli(*TRAIN, "--log", "wandb"))
    assert "--log wandb" in result.stderr and "mlflow or tensorboard" in result.stderr
    result = cli(*TRAIN, "--log", "tensorboard", "--log-uri", "file:/tmp/x")
    assert result.exit_code == 2 and "--log mlflow" in result.stderr
    assert not list(workdir.rglob("*.pt"))


def test_a_run_that_fails_is_marked_failed(workdir):
    from hwprofiles.tracking import start

    uri = (workdir / "store").as_uri()
    with pytest.raises(RuntimeError), start(["mlflow"], run_name="broken", uri=uri) as tracker:
        tracker.log_metrics({"x": 1.0}, step=1)
        raise RuntimeError("boom")
    with start(["mlflow"], run_name="fine", uri=uri):
        pass
    _, runs = mlflow_runs(uri)
    assert {r.info.run_name: r.info.status for r in runs} == {"broken": "FAILED", "fine": "FINISHED"}


def test_without_log_nothing_is_recorded(cli, workdir):
    ok(cli(*TRAIN, "--epochs", "1", "-o", "m.pt"))
    assert not (workdir / "hwprofiles-out" / "mlruns").exists() and not (workdir / "tensorboard").exists()


def test_train_calls_on_epoch_after_each_checkpoint(tmp_path, synthetic):
    from hwprofiles.train import TrainConfig, load_checkpoint, train

    seen = []
    path = tmp_path / "m.pt"

    def on_epoch(entry):
        seen.append((entry, load_checkpoint(path)["epoch"]))  # the checkpoint of that epoch is written

    config = TrainConfig(dataset="synthetic", epochs=2, width=0.5, batch_size=128)
    result = train(config, path, progress=False, data=synthetic, on_epoch=on_epoch)
    assert [entry for entry, _ in seen] == result.history
    assert [epoch for _, epoch in seen] == [1, 2]


class Recorder:
    """A Tracker that keeps what it is told (the protocol is all a tracker needs)."""

    def __init__(self):
        self.metrics: dict[str, list[tuple[int | None, float]]] = {}
        self.texts: dict[str, str] = {}

    def log_params(self, params):
        pass

    def log_metrics(self, metrics, step=None):
        for name, value in metrics.items():
            self.metrics.setdefault(name, []).append((step, value))

    def log_artifact(self, path, folder=""):
        pass

    def log_text(self, text, name):
        self.texts[name] = text

    def close(self, failed=False):
        pass


def test_a_transfer_matrix_is_logged_cell_by_cell_with_its_efficiency():
    from hwprofiles.eval.summary import Summary
    from hwprofiles.eval.transfer_report import TransferResult
    from hwprofiles.tracking.grids import log_transfer

    rows, cols = ["clean", "nit:pcm"], ["ideal", "pcm"]
    cells = {
        (r, c): Summary(0.1 * (i + 1) + 0.2 * j, 0.01, 0.05, 0.9, 3)
        for i, r in enumerate(rows)
        for j, c in enumerate(cols)
    }
    result = TransferResult(rows, cols, cells, {"ideal": 1.0, "pcm": 1.0}, "published")
    recorder = Recorder()
    log_transfer(recorder, result)
    for (r, c), cell in cells.items():
        assert recorder.metrics[f"transfer/{r}/{c}/mean"] == [(None, pytest.approx(cell.mean))]
    # efficiency: each row's accuracy under pcm over that of the model trained under pcm
    assert recorder.metrics["transfer/clean/pcm/efficiency"] == [(None, pytest.approx(0.3 / 0.4))]
    assert "transfer/clean/ideal/efficiency" not in recorder.metrics  # nothing was trained under ideal
    assert json.loads(recorder.texts["transfer.json"]) == json.loads(result.to_json())


def test_a_layer_sweep_is_logged_per_layer():
    from hwprofiles.eval.summary import EvaluationResult
    from hwprofiles.eval.sweep import SweepReport
    from hwprofiles.tracking.grids import log_sweep

    layers = {"conv1": EvaluationResult(0.8, 0.01, 0.7, 0.9, 2), "fc": EvaluationResult(0.6, 0.02, 0.5, 0.7, 2)}
    report = SweepReport("pcm", "layer", 2, 5.0, 0.1, layers={"m": layers}, checkpoints={"m": "m.pt"})
    recorder = Recorder()
    log_sweep(recorder, report)
    assert recorder.metrics["sweep/m/conv1/mean"] == [(None, 0.8)] and recorder.metrics["sweep/m/fc/ci_low"] == [
        (None, 0.5)
    ]
    assert "sweep-layer-pcm.json" in recorder.texts


def test_mlflow_metric_names_keep_to_what_mlflow_accepts():
    from hwprofiles.tracking.mlflow_tracker import metric_name

    assert metric_name("transfer/nit:pcm-joshi2020/ideal/mean") == "transfer/nit_pcm-joshi2020/ideal/mean"
    assert metric_name("/a//b/../c") == "a/b/_./c"


@pytest.mark.slow
def test_a_data_parallel_run_reports_each_epoch_once(workdir, run_module):
    # the callback stays in the launching process, which hears of the epochs when the ranks are done
    proc = run_module(*TRAIN, "--epochs", "2", "--nproc", "2", "-o", "m.pt", "--log", "tensorboard",
                      env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(hwprofiles_src()))})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    history = history_of(workdir / "m.pt")
    assert scalars(workdir)["test_accuracy"] == [(h["epoch"], pytest.approx(h["test_accuracy"])) for h in history]
    assert len(history) == 2


def hwprofiles_src() -> Path:
    import hwprofiles

    return Path(hwprofiles.__file__).resolve().parents[1]
