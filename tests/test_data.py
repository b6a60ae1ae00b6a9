"""Datasets: IDX parsing, where data is looked for, normalisation, subsets, loaders."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hwprofiles.data import (
    DATA_ENV_VAR,
    DEBIAN_DATASET_DIRS,
    DatasetError,
    DatasetSplits,
    list_datasets,
    load_dataset,
    make_loaders,
    read_idx,
)
from hwprofiles.errors import DataNotFoundError, HwProfilesError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # the real one, for the test that reads it

IDX_TYPE_CODES = {
    np.dtype(code): value
    for code, value in [("uint8", 0x08), ("int8", 0x09), (">i2", 0x0B), (">i4", 0x0C), (">f4", 0x0D), (">f8", 0x0E)]
}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = array.astype(array.dtype.newbyteorder(">")) if array.dtype.itemsize > 1 else array
    magic = bytes([0, 0, IDX_TYPE_CODES[array.dtype], array.ndim])
    header = magic + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def make_idx_root(
    root: Path,
    folder: str = "FashionMNIST",
    *,
    n_train: int = 60,
    n_test: int = 20,
    gz: bool = True,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A torchvision root holding tiny IDX files in ``ROOT/folder/raw``; returns what it wrote.

    Training files are gzipped when ``gz``; test files are always plain, so both kinds are read.
    """
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    raw = root / folder / "raw"
    for name, array in arrays.items():
        write_idx(raw / (f"{name}.gz" if gz and name.startswith("train") else name), array)
    return arrays


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $HWPROFILES_DATA, no Debian directory, and a cache in a temp dir; returns the cache root."""
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setitem(DEBIAN_DATASET_DIRS, "fashion-mnist", tmp_path / "no-debian" / "fashion-mnist")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "hwprofiles" / "data"


def channel_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    per_channel = images.transpose(0, 1).reshape(images.shape[1], -1).double()
    return per_channel.mean(dim=1), per_channel.std(dim=1, correction=0)


# ------------------------------------------------------------------------------ names


def test_list_datasets_names_every_dataset() -> None:
    assert list_datasets() == ["cifar10", "cifar100", "fashion-mnist", "mnist", "svhn", "synthetic"]


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(DatasetError, match=r"named 'fashion-mnst'.*Did you mean fashion-mnist") as info:
        load_dataset("fashion-mnst")
    assert isinstance(info.value, HwProfilesError) and isinstance(info.value, ValueError)


def test_options_are_for_synthetic_only() -> None:
    with pytest.raises(TypeError, match="num_train"):
        load_dataset("mnist", num_train=10)
    with pytest.raises(TypeError, match="colour"):
        load_dataset("synthetic", colour=True)


# -------------------------------------------------------------------------- synthetic


def test_synthetic_defaults() -> None:
    splits = load_dataset("synthetic")
    assert isinstance(splits, DatasetSplits)
    assert (len(splits.train), len(splits.test)) == (512, 256)
    assert (splits.in_channels, splits.image_size, splits.num_classes) == (1, 28, 10)
    images, labels = splits.train.tensors
    assert images.shape == (512, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64
    assert torch.bincount(labels).tolist() == [52] * 2 + [51] * 8  # balanced classes
    assert splits.name == "synthetic" and "synthetic" in splits.source


def test_synthetic_is_deterministic_per_seed() -> None:
    a, b, c = load_dataset("synthetic"), load_dataset("synthetic"), load_dataset("synthetic", seed=1)
    for split in ("train", "test"):
        tensors = zip(getattr(a, split).tensors, getattr(b, split).tensors, getattr(c, split).tensors)
        for ta, tb, tc in tensors:
            assert torch.equal(ta, tb)
            assert not torch.equal(ta, tc)


def test_synthetic_options_shape_the_data() -> None:
    splits = load_dataset(
        "synthetic", num_train=40, num_test=12, num_classes=4, in_channels=3, image_size=16, noise=0.5
    )
    assert splits.train.tensors[0].shape == (40, 3, 16, 16)
    assert splits.test.tensors[0].shape == (12, 3, 16, 16)
    assert (splits.in_channels, splits.image_size, splits.num_classes) == (3, 16, 4)
    assert set(splits.train.tensors[1].tolist()) == {0, 1, 2, 3}
    assert len(splits.mean) == len(splits.std) == 3


def test_synthetic_training_split_does_not_depend_on_test_size() -> None:
    a, b = load_dataset("synthetic", num_test=10), load_dataset("synthetic", num_test=300)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])


@pytest.mark.parametrize("bad", [{"num_train": 0}, {"image_size": -1}, {"noise": -0.1}])
def test_synthetic_rejects_bad_sizes(bad: dict[str, Any]) -> None:
    with pytest.raises(DatasetError, match=next(iter(bad))):
        load_dataset("synthetic", **bad)


def test_synthetic_is_normalised_per_channel() -> None:
    splits = load_dataset("synthetic", in_channels=3)
    mean, std = channel_moments(splits.train.tensors[0])
    assert torch.allclose(mean, torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(std, torch.ones(3, dtype=torch.float64), atol=1e-5)


def test_synthetic_is_learnable_in_a_few_steps() -> None:
    torch.manual_seed(0)
    splits = load_dataset("synthetic")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train, test = make_loaders(splits, 64, seed=0)
    for images, labels in train:  # one epoch: 8 steps
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
    images, labels = splits.test.tensors
    with torch.no_grad():
        accuracy = (model(images).argmax(dim=1) == labels).float().mean().item()
    assert accuracy > 0.9


# -------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", ">i2", ">i4", ">f4", ">f8"])
def test_read_idx_round_trips(tmp_path: Path, suffix: str, dtype: str) -> None:
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    read = read_idx(write_idx(tmp_path / f"x-idx3{suffix}", array))
    assert read.shape == (2, 3, 4) and read.dtype.isnative and read.flags.writeable
    np.testing.assert_array_equal(read, array)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x08\x03\x00\x00" + bytes(100), "bad magic number 0x08030000"),
        (b"\x00\x00\x07\x01" + bytes(100), "bad magic number 0x00000701"),
        (b"\x00\x00", "too short for a header"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "the header declares 3 dimensions but the file ends first"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x0a" + bytes(7), "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x0a" + bytes(11), "longer than its header says"),
    ],
)
def test_read_idx_names_a_corrupt_file(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataNotFoundError) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_read_idx_names_a_file_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")  # valid IDX, but not compressed
    with pytest.raises(DataNotFoundError, match="cannot be decompressed") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_names_a_truncated_gzip(tmp_path: Path) -> None:
    good = write_idx(tmp_path / "good-idx1-ubyte.gz", np.arange(1000, dtype=np.uint8) % 7)
    path = tmp_path / "cut-idx1-ubyte.gz"
    path.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(DataNotFoundError) as info:
        read_idx(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------- IDX datasets from roots


@pytest.mark.parametrize(("name", "folder"), [("fashion-mnist", "FashionMNIST"), ("mnist", "MNIST")])
@pytest.mark.parametrize("gz", [True, False])
def test_loads_a_torchvision_root(tmp_path: Path, name: str, folder: str, gz: bool) -> None:
    written = make_idx_root(tmp_path / "root", folder, gz=gz)
    splits = load_dataset(name, root=tmp_path / "root")
    assert splits.source == str(tmp_path / "root" / folder / "raw")
    assert (len(splits.train), len(splits.test)) == (60, 20)
    assert (splits.in_channels, splits.image_size, splits.num_classes) == (1, 28, 10)
    train_images = written["train-images-idx3-ubyte"].astype(np.float64) / 255
    assert splits.mean == pytest.approx((train_images.mean(),), rel=1e-9)
    assert splits.std == pytest.approx((train_images.std(),), rel=1e-9)
    expected = (written["t10k-images-idx3-ubyte"] / 255 - train_images.mean()) / train_images.std()
    np.testing.assert_allclose(splits.test.tensors[0][:, 0].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(splits.test.tensors[1].numpy(), written["t10k-labels-idx1-ubyte"])
    mean, std = channel_moments(splits.train.tensors[0])
    assert mean.item() == pytest.approx(0, abs=1e-5) and std.item() == pytest.approx(1, abs=1e-5)


def test_root_replaces_env_which_comes_before_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    for where, seed in [("root", 1), ("env", 2)]:
        make_idx_root(tmp_path / where, seed=seed)
    make_idx_root(isolated, seed=3)
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "env"))
    assert load_dataset(root=tmp_path / "root").source == str(tmp_path / "root" / "FashionMNIST" / "raw")
    assert load_dataset().source == str(tmp_path / "env" / "FashionMNIST" / "raw")
    with pytest.raises(DataNotFoundError):  # a given root is the only place looked in
        load_dataset(root=tmp_path / "empty")
    monkeypatch.delenv(DATA_ENV_VAR)
    assert load_dataset().source == str(isolated / "FashionMNIST" / "raw")


def test_debian_directory_comes_before_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    make_idx_root(tmp_path / "debian-root")
    flat = tmp_path / "debian"
    (tmp_path / "debian-root" / "FashionMNIST" / "raw").rename(flat)  # Debian's layout is flat
    make_idx_root(isolated, seed=3)
    monkeypatch.setitem(DEBIAN_DATASET_DIRS, "fashion-mnist", flat)
    assert load_dataset().source == str(flat)
    with pytest.raises(DataNotFoundError):
        load_dataset("mnist")  # Fashion-MNIST's files never stand in for MNIST's


def test_corrupt_file_in_a_root_is_named(tmp_path: Path) -> None:
    make_idx_root(tmp_path)
    bad = tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DataNotFoundError, match="truncated") as info:
        load_dataset(root=tmp_path)
    assert str(bad) in str(info.value)


def test_images_and_labels_must_agree(tmp_path: Path) -> None:
    make_idx_root(tmp_path)
    labels = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(labels, np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataNotFoundError, match="20 images but .* 19 labels") as info:
        load_dataset(root=tmp_path)
    assert str(labels) in str(info.value)


# ---------------------------------------------------------------------- missing data


def test_missing_data_message_lists_every_place_and_the_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    (tmp_path / "env").mkdir()
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion-mnist")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for path, origin in [
        (tmp_path / "env" / "FashionMNIST" / "raw", f"${DATA_ENV_VAR}"),
        (DEBIAN_DATASET_DIRS["fashion-mnist"], "Debian package dataset-fashion-mnist"),
        (isolated / "FashionMNIST" / "raw", "default download location"),
    ]:
        assert f"{path} ({origin}): does not exist" in message
    assert f"{tmp_path / 'env'} (${DATA_ENV_VAR}): no " in message  # a flat folder is looked at too
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-root DIR" in message
    assert f"--download (download=True) when online; it saves to {tmp_path / 'env'}" in message


def test_a_given_root_is_used_or_refused_never_passed_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_idx_root(tmp_path / "env")  # a complete copy elsewhere must not be taken instead
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("fashion-mnist", root=tmp_path / "nonexistent")
    message = str(info.value)
    assert f"{tmp_path / 'nonexistent'} (--data-root): does not exist" in message
    assert str(tmp_path / "env") not in message.split("To get it:")[0]


def test_a_flat_folder_of_idx_files_is_read(tmp_path: Path) -> None:
    written = make_idx_root(tmp_path / "tv", n_train=30, n_test=10)
    flat = tmp_path / "flat"
    (tmp_path / "tv" / "FashionMNIST" / "raw").rename(flat)
    splits = load_dataset("fashion-mnist", root=flat)
    assert splits.source == str(flat) and len(splits.train) == 30 and len(splits.test) == 10
    assert splits.train.tensors[1].tolist() == written["train-labels-idx1-ubyte"].tolist()


def test_missing_data_message_says_which_files_are_missing(tmp_path: Path) -> None:
    make_idx_root(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match=r"no t10k-labels-idx1-ubyte\[\.gz\]") as info:
        load_dataset("mnist", root=tmp_path)
    assert "apt-get" not in str(info.value)  # Debian ships no MNIST


def test_missing_torchvision_dataset_message(tmp_path: Path, isolated: Path) -> None:
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("cifar10", root=tmp_path / "nowhere")
    message = str(info.value)
    assert f"{tmp_path / 'nowhere'} (--data-root): does not exist" in message
    assert f"{isolated} (default download location)" not in message
    assert "cifar-10-batches-py" in message and "--download" in message


# ------------------------------------------------------- torchvision-backed datasets
def _has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return True


needs_torchvision = pytest.mark.skipif(not _has_torchvision(), reason="torchvision (the vision extra) is not installed")


class FakeCIFAR10:
    """Stands in for torchvision's class: NHWC uint8 ``data`` and list ``targets``."""

    def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
        n = 30 if train else 10
        rng = np.random.default_rng(int(train))
        self.data = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        self.data[..., 1] //= 2  # channels with different statistics
        self.targets = [i % 10 for i in range(n)]


class FakeSVHN:
    def __init__(self, root: str, split: str = "train", download: bool = False) -> None:
        n = 30 if split == "train" else 10
        self.data = np.random.default_rng(0).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        self.labels = np.arange(n) % 10


@needs_torchvision
@pytest.mark.parametrize(
    ("name", "cls", "files"),
    [("cifar10", FakeCIFAR10, ["cifar-10-batches-py/"]), ("svhn", FakeSVHN, ["train_32x32.mat", "test_32x32.mat"])],
)
def test_torchvision_datasets_load_into_normalised_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, cls: type, files: list[str]
) -> None:
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, cls.__name__.removeprefix("Fake"), cls)
    for f in files:
        (tmp_path / f).mkdir() if f.endswith("/") else (tmp_path / f).touch()
    splits = load_dataset(name, root=tmp_path)
    assert splits.source == str(tmp_path)
    assert splits.train.tensors[0].shape == (30, 3, 32, 32)
    assert (splits.in_channels, splits.image_size, splits.num_classes) == (3, 32, 10)
    mean, std = channel_moments(splits.train.tensors[0])
    assert torch.allclose(mean, torch.zeros(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(std, torch.ones(3, dtype=torch.float64), atol=1e-5)


@needs_torchvision
def test_corrupt_torchvision_dataset_is_named(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()  # present but empty: torchvision calls it corrupt
    with pytest.raises(DataNotFoundError, match="cannot be read") as info:
        load_dataset("cifar10", root=tmp_path)
    assert str(tmp_path / "cifar-10-batches-py") in str(info.value)


@needs_torchvision
def test_download_saves_into_root_and_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    calls = []

    class FakeFashionMNIST:
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append((root, download))
            make_idx_root(Path(root))

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    with pytest.raises(DataNotFoundError):
        load_dataset(root=tmp_path)
    assert calls == []  # nothing is fetched unless asked
    splits = load_dataset(root=tmp_path, download=True)
    assert calls == [(str(tmp_path), True)]
    assert splits.source == str(tmp_path / "FashionMNIST" / "raw") and len(splits.train) == 60


@needs_torchvision
def test_failed_download_is_reported_with_the_places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist", root=tmp_path, download=True)
    message = str(info.value)
    assert f"MNIST could not be downloaded to {tmp_path}: RuntimeError: Error downloading" in message
    assert f"{tmp_path / 'MNIST' / 'raw'} (--data-root): does not exist" in message


def test_idx_datasets_need_no_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_idx_root(tmp_path)
    monkeypatch.setitem(sys.modules, "torchvision", None)  # any import of it now fails
    assert len(load_dataset(root=tmp_path).train) == 60
    with pytest.raises(HwProfilesError, match="pip install torchvision"):
        load_dataset("cifar10", root=tmp_path, download=True)


def test_package_imports_without_torchvision(tmp_path: Path) -> None:
    make_idx_root(tmp_path)
    code = (
        "import sys; sys.modules['torchvision'] = None\n"
        "from hwprofiles.data import load_dataset\n"
        f"print(len(load_dataset(root={str(tmp_path)!r}).train), len(load_dataset('synthetic').train))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["60", "512"]


# ------------------------------------------------------------------------ subsets


def test_train_subset_is_seeded_and_keeps_full_split_statistics(tmp_path: Path) -> None:
    make_idx_root(tmp_path, n_train=200)
    full = load_dataset(root=tmp_path)
    a = load_dataset(root=tmp_path, train_subset=50)
    b = load_dataset(root=tmp_path, train_subset=50)
    c = load_dataset(root=tmp_path, train_subset=50, seed=1)
    assert len(a.train) == 50 and len(a.test) == 20
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[0], c.train.tensors[0])
    assert (a.mean, a.std) == (full.mean, full.std)
    rows = {tuple(row.flatten().tolist()) for row in full.train.tensors[0]}
    assert all(tuple(row.flatten().tolist()) in rows for row in a.train.tensors[0])


def test_test_subset(tmp_path: Path) -> None:
    splits = load_dataset("synthetic", train_subset=100, test_subset=30)
    assert (len(splits.train), len(splits.test)) == (100, 30)


@pytest.mark.parametrize("size", [0, 513, 1.5, True])
def test_bad_subset_size_is_an_error(size: Any) -> None:
    with pytest.raises(DatasetError, match=r"train_subset=.* must be a whole number from 1 to 512"):
        load_dataset("synthetic", train_subset=size)


# ------------------------------------------------------------------------- loaders


def test_loaders_are_seeded_and_cover_each_split() -> None:
    splits = load_dataset("synthetic")
    train, test = make_loaders(splits, 100, seed=0)
    batches = [labels for _, labels in train]
    assert [len(b) for b in batches] == [100] * 5 + [12]
    again = [labels for _, labels in make_loaders(splits, 100, seed=0).train]
    other = [labels for _, labels in make_loaders(splits, 100, seed=1).train]
    assert all(torch.equal(x, y) for x, y in zip(batches, again))
    assert not torch.equal(batches[0], other[0])
    second_epoch = [labels for _, labels in train]
    assert not torch.equal(batches[0], second_epoch[0])  # reshuffled each epoch
    images, labels = next(iter(train))
    assert images.shape == (100, 1, 28, 28) and labels.dtype == torch.int64
    test_labels = torch.cat([labels for _, labels in test])
    assert torch.equal(test_labels, splits.test.tensors[1])  # in order, all of it


def test_unshuffled_loader_keeps_order_and_global_rng_is_untouched() -> None:
    splits = load_dataset("synthetic")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train, _ = make_loaders(splits, 64, seed=0, shuffle=False)
    labels = torch.cat([y for _, y in train])
    assert torch.equal(labels, splits.train.tensors[1])
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------- the installed Fashion-MNIST


@pytest.fixture(scope="module")
def debian_fashion() -> Iterator[DatasetSplits]:
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if not all((DEBIAN_FASHION / f"{name}.gz").is_file() for name in names):
        pytest.skip(f"Fashion-MNIST is not in {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist)")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(DATA_ENV_VAR, raising=False)
        mp.setitem(DEBIAN_DATASET_DIRS, "fashion-mnist", DEBIAN_FASHION)
        yield load_dataset()


def test_debian_fashion_mnist_shapes(debian_fashion: DatasetSplits) -> None:
    splits = debian_fashion
    assert splits.name == "fashion-mnist" and splits.source == str(DEBIAN_FASHION)
    assert splits.train.tensors[0].shape == (60000, 1, 28, 28)
    assert splits.test.tensors[0].shape == (10000, 1, 28, 28)
    assert (splits.in_channels, splits.image_size, splits.num_classes) == (1, 28, 10)
    assert torch.bincount(splits.train.tensors[1]).tolist() == [6000] * 10
    assert torch.bincount(splits.test.tensors[1]).tolist() == [1000] * 10


def test_debian_fashion_mnist_is_normalised(debian_fashion: DatasetSplits) -> None:
    # the published Fashion-MNIST statistics on the [0, 1] pixel scale
    assert debian_fashion.mean == pytest.approx((0.2860,), abs=1e-4)
    assert debian_fashion.std == pytest.approx((0.3530,), abs=1e-4)
    mean, std = channel_moments(debian_fashion.train.tensors[0])
    assert mean.item() == pytest.approx(0, abs=1e-4) and std.item() == pytest.approx(1, abs=1e-4)
    test_mean, test_std = channel_moments(debian_fashion.test.tensors[0])
    assert abs(test_mean.item()) < 0.05 and abs(test_std.item() - 1) < 0.05
