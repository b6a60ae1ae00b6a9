"""Checkpoint storage (``--storage``): training runs leave their checkpoints in a folder at
a local path or any fsspec URL, the driver copies them into its out folder, and a re-run
fetches finished ones instead of training again.

The Ray test is marked ``ray`` (about half a minute); the others use the local executor."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import fsspec
import pytest
from test_cli_experiments import SMALL_TRANSFER, failed, ok

from hwprofiles.errors import HwProfilesError, StorageError
from hwprofiles.eval.transfer import train_on
from hwprofiles.executors import LocalExecutor
from hwprofiles.storage import Storage, fetch, open_storage
from hwprofiles.train import TrainConfig

ROWS = ("clean", "qat", "nit-gaussian-additive")


@pytest.fixture
def memory_url():
    """A fresh folder of fsspec's in-memory filesystem (one per process), removed after."""
    url = f"memory://hwprofiles-test-{uuid.uuid4().hex}"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def stored(url: str) -> dict[str, bytes]:
    """Every file in the storage folder at ``url``, by name (temporaries included)."""
    fs, root = fsspec.url_to_fs(url)
    return {Path(p).name: fs.cat_file(p) for p in fs.ls(root, detail=False)} if fs.exists(root) else {}


def checkpoints(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "checkpoints").glob("*.pt"))}


@pytest.fixture
def spy_training(monkeypatch):
    """Records every training run started in this process (the local executor's and its tasks')."""
    import hwprofiles.train.loop

    calls: list[str] = []
    real = hwprofiles.train.loop.train

    def train(config, path, **kwargs):
        calls.append(config.label)
        return real(config, path, **kwargs)

    monkeypatch.setattr(hwprofiles.train.loop, "train", train)
    return calls


# -- the folder itself -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "path"])
def test_a_file_put_is_there_whole_under_its_name_and_nothing_else_is(kind, memory_url, tmp_path):
    storage = open_storage(memory_url if kind == "memory" else tmp_path / "store")
    url = storage.put("m.pt", b"weights" * 1000)
    assert url == storage.url_of("m.pt") and storage.exists("m.pt") and not storage.exists("other.pt")
    assert fetch(url) == b"weights" * 1000
    assert stored(storage.url) == {"m.pt": b"weights" * 1000}  # no temporary file, no probe left
    assert storage.put("m.pt", b"new") == url and fetch(url) == b"new"  # replaced whole


def test_a_relative_path_becomes_an_absolute_url_a_worker_can_use(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_storage("store/run1").url == (tmp_path / "store" / "run1").as_uri()


def test_a_write_that_fails_halfway_leaves_neither_the_file_nor_a_temporary(memory_url, monkeypatch):
    storage = open_storage(memory_url)
    fs = fsspec.filesystem("memory")
    real = fs.pipe_file

    def half_then_full_disk(path, value, **kwargs):
        real(path, value[: len(value) // 2], **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fs, "pipe_file", half_then_full_disk)
    with pytest.raises(StorageError, match=r"cannot be written \(No space left on device\)"):
        storage.put("m.pt", b"0123456789")
    assert stored(memory_url) == {}


def test_storage_travels_as_its_url():
    import pickle

    assert pickle.loads(pickle.dumps(Storage("memory:///run"))) == Storage("memory:///run")


# -- clear errors ------------------------------------------------------------------------


def test_an_unknown_protocol_is_a_clear_error():
    with pytest.raises(StorageError, match=r"storage 'nosuch://b/run1': unknown protocol 'nosuch'.*local path"):
        open_storage("nosuch://b/run1")


def test_a_protocol_whose_package_is_missing_says_what_to_install():
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("s3fs is installed here")
    with pytest.raises(StorageError, match=r"storage 's3://bucket/run1': .*not installed.*`pip install s3fs`"):
        open_storage("s3://bucket/run1")


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StorageError, match=r"storage 'file://.*a-file/run1' cannot be written \(Not a directory\)"):
        open_storage(tmp_path / "a-file" / "run1")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_folder_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(
            StorageError, match=r"storage 'file://.*locked/run1' cannot be written \(Permission denied\)"
        ):
            open_storage(locked / "run1")
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("command", [SMALL_TRANSFER, ["demo", "--quick", "--quiet"]], ids=["transfer", "demo"])
def test_the_command_line_names_a_bad_storage_before_training_anything(command, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = failed(cli(*command, "-o", "out", "--storage", "nosuch://b/run1"))
    assert "storage 'nosuch://b/run1': unknown protocol 'nosuch'" in result.stderr
    assert not list(tmp_path.rglob("*.pt"))


# -- transfer with storage ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "path"])
def test_checkpoints_land_in_storage_and_a_rerun_fetches_them(
    kind, cli, tmp_path, monkeypatch, memory_url, spy_training
):
    monkeypatch.chdir(tmp_path)
    location = memory_url if kind == "memory" else str(tmp_path / "store")
    first = ok(cli(*SMALL_TRANSFER, "-o", "first", "--results", "first.sqlite", "--storage", location))
    assert sorted(spy_training) == ["clean", "nit:gaussian-additive", "qat"]
    trained = checkpoints(tmp_path / "first")
    assert len(trained) == 3 and all(any(row in name for name in trained) for row in ROWS)
    assert stored(open_storage(location).url) == trained  # the same bytes, nothing else
    spy_training.clear()
    # a fresh out folder and results store (or another machine): nothing is trained again
    again = ok(cli(*SMALL_TRANSFER, "-o", "again", "--results", "again.sqlite", env={"HWPROFILES_STORAGE": location}))
    assert spy_training == [] and "training " not in again.stdout
    assert again.stdout.count("fetched finished checkpoint") == 3 and "fetched" not in first.stdout
    assert checkpoints(tmp_path / "again") == trained
    matrices = [json.loads((tmp_path / d / "transfer.json").read_text()) for d in ("first", "again")]
    assert matrices[0]["accuracy"] == matrices[1]["accuracy"]


def test_a_stored_checkpoint_of_another_config_is_trained_again_and_replaced(cli, tmp_path, monkeypatch, spy_training):
    monkeypatch.chdir(tmp_path)
    ok(cli(*SMALL_TRANSFER, "-o", "one", "--storage", "store"))
    spy_training.clear()
    longer = [*SMALL_TRANSFER, "--epochs", "2"]  # the same checkpoint names, another config
    ok(cli(*longer, "-o", "two", "--storage", "store"))
    assert sorted(spy_training) == ["clean", "nit:gaussian-additive", "qat"]
    assert stored(open_storage("store").url) == checkpoints(tmp_path / "two") != checkpoints(tmp_path / "one")


def test_without_storage_nothing_is_fetched_or_stored(cli, tmp_path, monkeypatch, memory_url):
    monkeypatch.chdir(tmp_path)
    ok(cli(*SMALL_TRANSFER, "-o", "one", "--storage", memory_url))
    result = ok(cli(*SMALL_TRANSFER, "-o", "two"))
    assert result.stdout.count("training ") == 3 and "fetched" not in result.stdout


def test_a_training_task_leaves_its_checkpoint_in_storage_and_returns_its_url(synthetic, tmp_path, memory_url):
    config = TrainConfig(model="lenet5", dataset="synthetic", width=0.5, epochs=1, batch_size=64)
    storage = open_storage(memory_url)
    events: list[str] = []
    path = tmp_path / "ckpt" / "lenet5-clean-s0.pt"
    train_on(LocalExecutor(), [(config, path)], synthetic, storage=storage, on_event=events.append)
    assert stored(memory_url) == {path.name: path.read_bytes()}
    assert events == [f"trained clean -> {path} (from {storage.url_of(path.name)})"]


def test_a_task_whose_storage_fails_is_named_and_the_others_go_on(synthetic, tmp_path, memory_url, monkeypatch):
    configs = [
        TrainConfig(model="lenet5", dataset="synthetic", width=0.5, epochs=1, batch_size=64, seed=seed)
        for seed in (0, 1)
    ]
    storage = open_storage(memory_url)
    real = Storage.put

    def put(self, name, data):
        if "s0" in name:
            raise StorageError(f"storage {self.url!r} cannot be written (Permission denied)")
        return real(self, name, data)

    monkeypatch.setattr(Storage, "put", put)
    runs = [(c, tmp_path / f"lenet5-clean-s{c.seed}.pt") for c in configs]
    with pytest.raises(HwProfilesError, match=r"training failed: clean: storage .* cannot be written"):
        train_on(LocalExecutor(), runs, synthetic, storage=storage)
    assert not runs[0][1].exists() and runs[1][1].exists()


# -- on Ray ---------------------------------------------------------------------------------


@pytest.mark.ray
def test_a_transfer_matrix_on_ray_through_storage_gives_the_local_numbers(cli, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    store = (tmp_path / "store").as_uri()  # file://, as a cluster's workers would reach a shared folder
    ok(cli(*SMALL_TRANSFER, "-o", "local", "--results", "local.sqlite"))
    try:
        remote = ok(
            cli(*SMALL_TRANSFER, "-o", "remote", "--results", "remote.sqlite", "--executor", "ray", "--storage", store)
        )
    finally:
        ray.shutdown()
    local, through_storage = (json.loads((tmp_path / d / "transfer.json").read_text()) for d in ("local", "remote"))
    assert through_storage["accuracy"] == local["accuracy"] and through_storage["rows"] == local["rows"]
    trained = checkpoints(tmp_path / "remote")
    assert len(trained) == 3 and stored(store) == trained  # left in storage by the workers, copied by the driver
    assert remote.stdout.count(f"(from {store}/") == 3  # each came back as a URL, not as bytes
