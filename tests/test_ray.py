"""The Ray executor: the same numbers as the local one, faults survived, grids resumed.

Marked ``ray``; skipped where Ray is not installed (``pip install 'hwprofiles[ray]'``).
Each test starts and stops its own small Ray (2 CPUs), so the module runs in about a
minute on two cores.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every Ray node of these tests on loopback
ray = pytest.importorskip("ray")

from conftest import clean_env  # noqa: E402
from test_cli_experiments import SMALL_TRANSFER, TRAIN, ok  # noqa: E402

from hwprofiles.eval import load_trained  # noqa: E402
from hwprofiles.eval.grid import GridStats, prepare, run_requests  # noqa: E402
from hwprofiles.eval.sweep import run_sweep  # noqa: E402
from hwprofiles.executors import LocalExecutor, RayExecutor, get_executor  # noqa: E402
from hwprofiles.results import ResultsStore  # noqa: E402
from hwprofiles.train import TrainConfig, train  # noqa: E402

pytestmark = pytest.mark.ray
GRID = [0.5, 2.0, 8.0]


@pytest.fixture(scope="module")
def loaders(synthetic):
    """Batches of 256, as the command line evaluates."""
    from hwprofiles.data import make_loaders

    return make_loaders(synthetic, 256, seed=0, shuffle=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic):
    models = []
    for seed in (1, 2):
        path = tmp_path_factory.mktemp("ckpt") / f"m{seed}.pt"
        train(
            TrainConfig(model="lenet5", dataset="synthetic", width=0.5, epochs=3, batch_size=32, lr=5e-3, seed=seed),
            path,
            data=synthetic,
            progress=False,
        )
        models.append(load_trained(path, synthetic))
    return models


@pytest.fixture
def local_ray():
    executor = RayExecutor(num_cpus=2)
    yield executor
    ray.shutdown()


def curves(report):
    return {label: [r.accuracies for _, r in points] for label, points in report.curves.items()}


def test_a_sweep_on_ray_gives_the_local_numbers(trained, loaders, local_ray, tmp_path):
    local = run_sweep(trained, "pcm-joshi2020", loaders, grid=GRID, samples=3)
    store = ResultsStore(tmp_path / "r.sqlite")
    stats = GridStats()
    remote = run_sweep(
        trained, "pcm-joshi2020", loaders, grid=GRID, samples=3, executor=local_ray, store=store, stats=stats
    )
    assert curves(remote) == curves(local) and remote.clean == local.clean and remote.midpoints == local.midpoints
    assert stats.chips_measured == 2 * (3 * 3 + 1) and not stats.failures
    again = GridStats()
    run_sweep(trained, "pcm-joshi2020", loaders, grid=GRID, samples=3, executor=local_ray, store=store, stats=again)
    assert again.chips_measured == 0 and again.chips_cached == 20  # a re-submitted grid skips every finished cell


def test_a_failing_evaluation_is_named_and_the_others_go_on(trained, loaders, local_ray):
    good = prepare(trained[0].model, loaders.test, "gaussian-additive", samples=2, labels={"checkpoint": "good.pt"})
    bad = prepare(trained[0].model, loaders.test, "gaussian-additive", samples=2, labels={"checkpoint": "bad.pt"})
    bad.batches = [(x[:, :, :5], y) for x, y in bad.batches]  # inputs the model cannot take
    stats = GridStats()
    results = run_requests([good, bad], executor=local_ray, stats=stats)
    assert (
        results[0] is not None and results[0].accuracies == run_requests([good], executor=LocalExecutor())[0].accuracies
    )
    assert results[1] is None and len(stats.failures) == 1 and stats.failures[0].name.startswith("bad.pt under")


def test_a_transfer_matrix_on_ray_gives_the_local_numbers(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = SMALL_TRANSFER
    ok(cli(*args, "-o", "local", "--results", "local.sqlite"))
    ok(cli(*args, "-o", "remote", "--results", "remote.sqlite", "--executor", "ray"))
    ray.shutdown()
    local, remote = (json.loads((tmp_path / d / "transfer.json").read_text()) for d in ("local", "remote"))
    assert remote["accuracy"] == local["accuracy"] and remote["rows"] == local["rows"]
    for name in ("nit-gaussian-additive", "clean", "qat"):  # trained on a worker, written by the driver
        assert any((tmp_path / "remote" / "checkpoints").glob(f"*{name}*.pt"))


def test_a_grid_survives_a_node_that_dies(trained, loaders, tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # the head runs no task
    doomed = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    try:
        executor = RayExecutor(cluster.address, threads_per_task=1)  # one task per 1-CPU node
        requests = [
            prepare(
                m.model, loaders.test, "gaussian-additive", samples=4, noise_scale=s, labels={"checkpoint": str(m.path)}
            )
            for m in trained
            for s in GRID
        ]
        store = ResultsStore(tmp_path / "r.sqlite")
        killer = _after(lambda: len(store_rows(tmp_path / "r.sqlite")) >= 4, lambda: cluster.remove_node(doomed))
        results = run_requests(requests, store=store, executor=executor)
        killer.join()
        assert killer.fired, "the node was not killed mid-grid"
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as the workers ran
        try:
            expected = run_requests(requests, executor=LocalExecutor())
        finally:
            torch.set_num_threads(threads)
        assert [r.accuracies for r in results] == [r.accuracies for r in expected]
        rows = store_rows(tmp_path / "r.sqlite")
        assert len(rows) == len({r["key"] for r in rows}) == 4 * len(requests)  # none lost, none doubled
    finally:
        ray.shutdown()
        cluster.shutdown()


def store_rows(path):
    try:
        return ResultsStore(path).rows("evals")
    except Exception:  # noqa: BLE001 - not created yet
        return []


class _When(threading.Thread):
    """Runs ``action`` once ``condition`` holds (polled), within ``timeout`` seconds; ``fired`` says if it ran."""

    def __init__(self, condition, action, timeout: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.condition, self.action, self.timeout, self.fired = condition, action, timeout, False

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.condition():
                self.action()
                self.fired = True
                return
            time.sleep(0.05)


def _after(condition, action, timeout: float = 120.0) -> _When:
    thread = _When(condition, action, timeout)
    thread.start()
    return thread


def test_a_driver_killed_mid_grid_resumes_without_measuring_twice(tmp_path):
    env = clean_env(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")
    subprocess.run(
        [sys.executable, "-m", "hwprofiles", *TRAIN, "-o", "m.pt"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    args = [
        sys.executable,
        "-m",
        "hwprofiles",
        "sweep",
        "m.pt",
        "--points",
        "6",
        "-k",
        "4",
        "--quiet",
        "--executor",
        "ray",
        "--results",
        "r.sqlite",
    ]
    # its own process group: kill -9 takes the driver and the Ray it started, as a crash of the machine would
    driver = subprocess.Popen(
        args,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(store_rows(tmp_path / "r.sqlite")) < 4:
        assert driver.poll() is None, driver.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    kept = {r["key"]: r["accuracy"] for r in store_rows(tmp_path / "r.sqlite")}
    assert 4 <= len(kept) < 6 * 4 + 1  # six noise levels x 4 chips, and one noise-free chip
    rerun = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(kept)} read from the results store" in rerun.stderr
    after = {r["key"]: r["accuracy"] for r in store_rows(tmp_path / "r.sqlite")}
    assert len(after) == 6 * 4 + 1 and all(after[k] == v for k, v in kept.items())


def test_ray_missing_or_unreachable_is_a_clean_error(monkeypatch):
    from hwprofiles.errors import HwProfilesError

    with pytest.raises(HwProfilesError, match="unknown executor 'dask'"):
        get_executor("dask")
    with pytest.raises(HwProfilesError, match="cannot join the Ray cluster at '127.0.0.1:1': nothing answers"):
        get_executor("ray", address="127.0.0.1:1")
    assert not ray.is_initialized()
