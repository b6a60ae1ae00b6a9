"""Data-parallel training (train --nproc N, torchrun): two gloo processes on the CPU.

One traced two-process run (NIT under pcm-joshi2020, whose DAC calibrates its input
bounds while training) records every rank's full state after every optimizer step; the
other tests compare against it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import clean_env

from hwprofiles.train import TrainConfig, load_checkpoint

# 449 = 14 x 32 + 1: the shares of a batch differ in size, and each epoch's last batch
# has one sample, so rank 1 runs a zero-weight placeholder there.
CONFIG = dict(
    model="lenet5",
    dataset="synthetic",
    method="nit",
    profile="pcm-joshi2020",
    width=0.5,
    epochs=2,
    batch_size=32,
    lr=5e-3,
    seed=3,
    train_subset=449,
)
STEPS = 2 * 15
CLI_ARGS = [
    "train",
    "--model",
    "lenet5",
    "--dataset",
    "synthetic",
    "--method",
    "nit",
    "--profile",
    "pcm-joshi2020",
    "--width",
    "0.5",
    "--epochs",
    "2",
    "--batch-size",
    "32",
    "--lr",
    "5e-3",
    "--seed",
    "3",
    "--train-subset",
    "449",
    "--quiet",
]
TIMEOUT_S = 300  # a hung run fails the test instead of the suite


def _traced_worker(index: int, nproc: int, store: str, out: str) -> None:
    """One rank of a run that saves its whole state after every step, and the epoch-1 checkpoint."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from hwprofiles.train import distributed as ddp
    from hwprofiles.train import loop

    rank = ddp.join_group(index, nproc, "cpu", local_rank=index, init_method=f"file://{store}")
    models: list[torch.nn.Module] = []
    real_wrap, real_save = ddp.wrap, loop.save_checkpoint

    def wrap(model: torch.nn.Module, r: ddp.Rank) -> torch.nn.Module:
        models.append(model)
        return real_wrap(model, r)

    def save(path: Path, payload: dict) -> Path:
        real_save(path, payload)
        if payload["epoch"] == 1:  # what a run interrupted during epoch 2 leaves behind
            shutil.copy(path, Path(out) / "epoch1.pt")
        return Path(path)

    states: list[dict[str, torch.Tensor]] = []
    ddp.wrap, loop.save_checkpoint = wrap, save
    register_optimizer_step_post_hook(
        lambda *_: states.append({k: v.detach().clone() for k, v in models[0].state_dict().items()})
    )
    result = loop.train(TrainConfig(**CONFIG), Path(out) / "straight.pt", progress=False, _rank=rank)
    torch.save({"states": states, "history": result.history}, Path(out) / f"rank{index}.pt")
    ddp.exit_rank(0)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("ddp")
    # The thread count changes floating-point sums: every run here uses one per process.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")
        mp.start_processes(_traced_worker, args=(2, str(out / "store"), str(out)), nprocs=2, start_method="spawn")
    return out


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=TIMEOUT_S,
        env=clean_env(PYTHONPATH=src, OMP_NUM_THREADS="1"),
    )


def test_ranks_hold_identical_parameters_and_bounds_after_every_step(traced):
    from hwprofiles.nn.mvm import is_calibration_key

    rank0, rank1 = (torch.load(traced / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert len(rank0["states"]) == len(rank1["states"]) == STEPS
    for step, (a, b) in enumerate(zip(rank0["states"], rank1["states"])):
        assert _equal(a, b), f"ranks differ after step {step + 1}"
    bounds = [k for k in rank0["states"][0] if is_calibration_key(k)]
    assert bounds, "the profile's DAC should calibrate input bounds"
    # The bounds move with the data each rank sees, so equal bounds are the sync's doing.
    assert all(0 < rank0["states"][0][k] != rank0["states"][-1][k] for k in bounds)
    assert rank0["history"] == rank1["history"]
    assert rank0["history"][1]["train_loss"] < rank0["history"][0]["train_loss"]
    assert _equal(load_checkpoint(traced / "straight.pt")["state_dict"], rank0["states"][-1])


def test_checkpoint_of_a_data_parallel_run_loads_in_one_process(traced):
    from hwprofiles.data import load_dataset, make_loaders
    from hwprofiles.eval.chips import load_trained
    from hwprofiles.train.loop import accuracy, build_base_model
    from hwprofiles.train.methods import prepare_for_training

    state = load_checkpoint(traced / "straight.pt")
    assert state["epoch"] == 2 and state["meta"]["finished"] is True
    cfg = TrainConfig(**CONFIG)
    splits = load_dataset("synthetic", train_subset=449, seed=3)
    noisy = prepare_for_training(build_base_model(cfg, splits.in_channels, splits.num_classes), cfg)
    noisy.load_state_dict(state["state_dict"])  # strict: the training model, bounds included
    trained = load_trained(traced / "straight.pt")
    acc = accuracy(trained.model, make_loaders(splits, 128, seed=0).test)
    assert acc > 0.3  # 10 classes: chance is 0.1


def test_cli_resumes_a_data_parallel_run_to_the_same_weights(traced, tmp_path):
    shutil.copy(traced / "epoch1.pt", tmp_path / "resumed.pt")
    done = _run(
        [
            sys.executable,
            "-m",
            "hwprofiles",
            *CLI_ARGS,
            "--nproc",
            "2",
            "--resume",
            "--out",
            str(tmp_path / "resumed.pt"),
            "--results",
            str(tmp_path / "results.sqlite"),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "test accuracy" in done.stdout
    assert _equal(
        load_checkpoint(tmp_path / "resumed.pt")["state_dict"], load_checkpoint(traced / "straight.pt")["state_dict"]
    )


def test_torchrun_gives_the_run_of_nproc(traced, tmp_path):
    done = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "hwprofiles",
            *CLI_ARGS,
            "--out",
            str(tmp_path / "m.pt"),
            "--results",
            str(tmp_path / "results.sqlite"),
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("test accuracy") == 1  # rank 0 reports, the other rank stays quiet
    assert _equal(
        load_checkpoint(tmp_path / "m.pt")["state_dict"], load_checkpoint(traced / "straight.pt")["state_dict"]
    )


def test_a_failing_rank_stops_the_run_with_its_message(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    done = _run(
        [
            sys.executable,
            "-m",
            "hwprofiles",
            "train",
            "--dataset",
            "synthetic",
            "--width",
            "0.5",
            "--epochs",
            "3",
            "--train-subset",
            "64",
            "--quiet",
            "--nproc",
            "2",
            "--out",
            str(tmp_path / "file" / "m.pt"),
        ],
        tmp_path,
    )
    assert done.returncode != 0
    assert "training process 0 of 2 failed" in done.stderr
    assert "cannot be written" in done.stderr  # rank 0's own message
    assert "Traceback" not in done.stderr


def test_nproc_below_one_is_a_usage_error(cli):
    result = cli("train", "--dataset", "synthetic", "--nproc", "0")
    assert result.exit_code == 2
    assert "--nproc" in result.stderr


def test_more_processes_than_gpus_is_refused(monkeypatch):
    from hwprofiles.train import distributed as ddp

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ddp.DistributedTrainingError, match="needs 2 GPUs, one per process; this machine has 1"):
        ddp.check_request(2, "cuda")
    with pytest.raises(ddp.DistributedTrainingError, match="at least 1"):
        ddp.check_request(0, "cpu")
    ddp.check_request(1, "cuda")  # one process trains as before


def test_rank_shares_cover_each_batch_once():
    from hwprofiles.train.distributed import Rank

    for world in (1, 2, 3):
        for n in (1, 2, 5, 32):
            shares = [Rank(r, world, torch.device("cpu")).share(n) for r in range(world)]
            assert shares[0][0] == 0 and shares[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(shares, shares[1:]))
            assert max(b - a for a, b in shares) - min(b - a for a, b in shares) <= 1
