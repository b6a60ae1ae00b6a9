"""``load_dataset``: find a dataset, load it into memory, normalise it, subset it.

MNIST and Fashion-MNIST are read from their IDX files with numpy; CIFAR-10,
CIFAR-100 and SVHN go through torchvision's dataset classes, imported only when one
of them is asked for. Where each is looked for is described in
:mod:`hwprofiles.data.locate`.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from hwprofiles.data.idx import read_idx
from hwprofiles.data.locate import Place, download_root, not_found_message, search_places
from hwprofiles.data.splits import (
    DatasetSplits,
    channel_stats_float,
    channel_stats_uint8,
    normalize,
    subset_indices,
)
from hwprofiles.data.synthetic import make_synthetic
from hwprofiles.errors import DataNotFoundError, DatasetError, HwProfilesError

DEFAULT_DATASET = "fashion-mnist"


@dataclass(frozen=True)
class _IdxSpec:
    title: str
    folder: str  # torchvision's class name, which is also its folder in a root
    num_classes: int = 10


@dataclass(frozen=True)
class _TorchvisionSpec:
    title: str
    cls: str
    files: tuple[str, ...]  # what a root holds once torchvision has downloaded it
    num_classes: int


_IDX_DATASETS = {
    "fashion-mnist": _IdxSpec("Fashion-MNIST", "FashionMNIST"),
    "mnist": _IdxSpec("MNIST", "MNIST"),
}
_TORCHVISION_DATASETS = {
    "cifar10": _TorchvisionSpec("CIFAR-10", "CIFAR10", ("cifar-10-batches-py",), 10),
    "cifar100": _TorchvisionSpec("CIFAR-100", "CIFAR100", ("cifar-100-python",), 100),
    "svhn": _TorchvisionSpec("SVHN", "SVHN", ("train_32x32.mat", "test_32x32.mat"), 10),
}
_SYNTHETIC = "synthetic"
_SYNTHETIC_OPTIONS = frozenset({"num_train", "num_test", "num_classes", "in_channels", "image_size", "noise"})
_ALIASES = {
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
}

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# (train images, train labels, test images, test labels): uint8 (N, C, H, W), int64 (N,)
_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def list_datasets() -> list[str]:
    """The names :func:`load_dataset` accepts, sorted.

    >>> list_datasets()
    ['cifar10', 'cifar100', 'fashion-mnist', 'mnist', 'svhn', 'synthetic']
    """
    return sorted([*_IDX_DATASETS, *_TORCHVISION_DATASETS, _SYNTHETIC])


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    names = list_datasets()
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise DatasetError(f"No dataset is named '{name}'.{hint} Known datasets: {', '.join(names)}.")
    return key


# --------------------------------------------------------------------------- IDX files


def _find_idx_files(directory: Path) -> tuple[dict[str, Path] | None, str]:
    """The four IDX files in ``directory`` (plain preferred to ``.gz``), or what is missing."""
    if not directory.is_dir():
        return None, "does not exist"
    found: dict[str, Path] = {}
    missing = []
    for base in (*_IDX_FILES["train"], *_IDX_FILES["test"]):
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                found[base] = candidate
                break
        else:
            missing.append(f"{base}[.gz]")
    if missing:
        return None, f"no {', '.join(missing)}"
    return found, ""


def _read_idx_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataNotFoundError(
            f"{images_path} holds {images.dtype} of shape {images.shape}, not uint8 images (N, H, W)."
        )
    if labels.ndim != 1:
        raise DataNotFoundError(f"{labels_path} holds an array of shape {labels.shape}, not labels (N,).")
    if len(images) != len(labels):
        raise DataNotFoundError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels.")
    if labels.size and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise DataNotFoundError(f"{labels_path} holds labels outside 0..{num_classes - 1}.")
    return images[:, None], labels.astype(np.int64)


def _read_idx_dataset(files: dict[str, Path], spec: _IdxSpec) -> _Arrays:
    (train_images, train_labels), (test_images, test_labels) = _IDX_FILES["train"], _IDX_FILES["test"]
    x_train, y_train = _read_idx_pair(files[train_images], files[train_labels], spec.num_classes)
    x_test, y_test = _read_idx_pair(files[test_images], files[test_labels], spec.num_classes)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataNotFoundError(
            f"{files[_IDX_FILES['train'][0]]} holds images of shape {x_train.shape[2:]} but "
            f"{files[_IDX_FILES['test'][0]]} of shape {x_test.shape[2:]}."
        )
    return x_train, y_train, x_test, y_test


def _torchvision_datasets(title: str) -> Any:
    try:
        import torchvision.datasets
    except ImportError as exc:
        raise HwProfilesError(
            f"{title} needs torchvision here ({exc}): pip install 'hwprofiles[vision]' "
            "(or `pip install torchvision` of the release that matches your torch)."
        ) from exc
    return torchvision.datasets


def _load_idx(name: str, spec: _IdxSpec, root: str | os.PathLike[str] | None, download: bool) -> tuple[_Arrays, str]:
    looked: list[tuple[Place, str]] = []
    for place in search_places(name, root, f"{spec.folder}/raw"):
        files, problem = _find_idx_files(place.path)
        if files is not None:
            return _read_idx_dataset(files, spec), str(place.path)
        looked.append((place, problem))
    download_error = None
    if download:
        target = download_root(root)
        cls = getattr(_torchvision_datasets(spec.title), spec.folder)
        try:
            cls(str(target), train=True, download=True)  # fetches all four files
        except Exception as exc:  # network and mirror failures come in many types
            download_error = f"{type(exc).__name__}: {exc}"
        else:
            raw = target / spec.folder / "raw"
            files, problem = _find_idx_files(raw)
            if files is not None:
                return _read_idx_dataset(files, spec), str(raw)
            download_error = f"after downloading, {raw}: {problem}"
    raise DataNotFoundError(
        not_found_message(
            name,
            spec.title,
            looked,
            layout=f"{spec.folder}/raw/",
            root=root,
            download_error=download_error,
        )
    )


# ------------------------------------------------------------------ torchvision classes


def _read_torchvision(spec: _TorchvisionSpec, root: Path, *, download: bool) -> _Arrays:
    cls = getattr(_torchvision_datasets(spec.title), spec.cls)
    arrays: list[np.ndarray] = []
    for train in (True, False):
        if spec.cls == "SVHN":
            ds = cls(str(root), split="train" if train else "test", download=download)
            images, labels = ds.data, ds.labels  # already (N, C, H, W); label 10 mapped to 0
        else:
            ds = cls(str(root), train=train, download=download)
            images, labels = ds.data.transpose(0, 3, 1, 2), ds.targets  # from (N, H, W, C)
        arrays += [np.ascontiguousarray(images, dtype=np.uint8), np.asarray(labels, dtype=np.int64)]
    x_train, y_train, x_test, y_test = arrays
    return x_train, y_train, x_test, y_test


def _load_torchvision(
    name: str, spec: _TorchvisionSpec, root: str | os.PathLike[str] | None, download: bool
) -> tuple[_Arrays, str]:
    looked: list[tuple[Place, str]] = []
    for place in search_places(name, root):
        missing = [f for f in spec.files if not (place.path / f).exists()]
        if not missing:
            try:
                return _read_torchvision(spec, place.path, download=False), str(place.path)
            except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
                raise DataNotFoundError(
                    f"{spec.title} in {place.path} ({place.origin}) cannot be read: {exc}\n"
                    f"Delete {', '.join(str(place.path / f) for f in spec.files)} and fetch it again "
                    "(--download when online)."
                ) from exc
        problem = f"no {', '.join(missing)}" if place.path.is_dir() else "does not exist"
        looked.append((place, problem))
    download_error = None
    if download:
        target = download_root(root)
        _torchvision_datasets(spec.title)  # a missing torchvision is its own error, not a network one
        try:
            return _read_torchvision(spec, target, download=True), str(target)
        except Exception as exc:  # network and mirror failures come in many types
            download_error = f"{type(exc).__name__}: {exc}"
    raise DataNotFoundError(
        not_found_message(
            name,
            spec.title,
            looked,
            layout=", ".join(spec.files),
            root=root,
            download_error=download_error,
        )
    )


def _load_files(key: str, root: str | os.PathLike[str] | None, download: bool) -> tuple[_Arrays, str, int]:
    """The uint8 arrays of a dataset read from files, where they were found, and its number of classes."""
    if key in _IDX_DATASETS:
        idx_spec = _IDX_DATASETS[key]
        arrays, source = _load_idx(key, idx_spec, root, download)
        return arrays, source, idx_spec.num_classes
    spec = _TORCHVISION_DATASETS[key]
    arrays, source = _load_torchvision(key, spec, root, download)
    return arrays, source, spec.num_classes


# ------------------------------------------------------------------------- assembling


def _splits(
    name: str,
    source: str,
    num_classes: int,
    arrays: tuple[Any, Any, Any, Any],
    mean: np.ndarray,
    std: np.ndarray,
    *,
    scale: float,
    train_subset: int | None,
    test_subset: int | None,
    seed: int,
) -> DatasetSplits:
    """Subset, then normalise with the full training split's statistics."""
    x_train, y_train, x_test, y_test = arrays
    std = np.where(std > 0, std, 1.0)  # a constant channel stays as it is, centred
    picked = []
    for stream, (x, y, size, what) in enumerate(
        [(x_train, y_train, train_subset, "train_subset"), (x_test, y_test, test_subset, "test_subset")]
    ):
        idx = subset_indices(len(x), size, seed=seed, stream=stream, what=what)
        if idx is not None:
            x, y = x[idx], y[idx]
        labels = torch.from_numpy(y) if isinstance(y, np.ndarray) else y
        picked.append(TensorDataset(normalize(x, mean, std), labels.long()))
    return DatasetSplits(
        train=picked[0],
        test=picked[1],
        in_channels=int(x_train.shape[1]),
        num_classes=num_classes,
        image_size=int(x_train.shape[2]),
        name=name,
        source=source,
        mean=tuple(float(m) / scale for m in mean),
        std=tuple(float(s) / scale for s in std),
    )


def _check_request(key: str, seed: int, options: dict[str, Any]) -> None:
    """Refuse a bad seed, and options for a dataset that takes none (only ``synthetic`` takes any)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DatasetError(f"seed={seed!r} must be a non-negative whole number.")
    unknown = set(options) - (_SYNTHETIC_OPTIONS if key == _SYNTHETIC else set())
    if unknown:
        allowed = f"; it takes {', '.join(sorted(_SYNTHETIC_OPTIONS))}" if key == _SYNTHETIC else ""
        raise TypeError(f"load_dataset('{key}') got unexpected options: {', '.join(sorted(unknown))}{allowed}")


def load_dataset(
    name: str = DEFAULT_DATASET,
    *,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    **options: Any,
) -> DatasetSplits:
    """Load a dataset into memory, normalised to zero mean and unit variance per channel.

    The statistics come from the whole training split (before any subset), so a
    subset sees the same input scale as the full dataset.

    Args:
        name: one of :func:`list_datasets` (``fashion-mnist``, ``mnist``, ``cifar10``,
            ``cifar100``, ``svhn``, ``synthetic``).
        root: a torchvision dataset root searched first (the ``--data-root`` option).
        download: fetch the dataset through torchvision when it is found nowhere,
            into ``root``, else ``$HWPROFILES_DATA``, else ``~/.cache/hwprofiles/data``.
        train_subset: keep a seeded random subset of this many training samples.
        test_subset: likewise for the test split.
        seed: seeds the subsets, and for ``synthetic`` the data itself.
        **options: for ``synthetic`` only: ``num_train`` (512), ``num_test`` (256),
            ``num_classes`` (10), ``in_channels`` (1), ``image_size`` (28), ``noise`` (1.0).

    Returns:
        The :class:`DatasetSplits`.

    Raises:
        DataNotFoundError: the dataset is in none of the places searched (the message
            lists them and how to get it), or a file there is corrupt (the message names it).
        DatasetError: an unknown name, a bad subset size or seed.
        TypeError: ``options`` given for a dataset other than ``synthetic``, or unknown.

    >>> splits = load_dataset("synthetic", train_subset=100)
    >>> len(splits.train), len(splits.test), splits.in_channels, splits.image_size
    (100, 256, 1, 28)
    """
    key = _canonical(name)
    _check_request(key, seed, options)
    arrays: tuple[Any, Any, Any, Any]
    if key == _SYNTHETIC:
        arrays = make_synthetic(seed=seed, **options)
        mean, std = channel_stats_float(arrays[0])
        num_classes = int(options.get("num_classes", 10))
        source, scale = f"synthetic (generated, seed={seed})", 1.0
    else:
        arrays, source, num_classes = _load_files(key, root, download)
        mean, std = channel_stats_uint8(arrays[0])
        scale = 255.0
    return _splits(
        key,
        source,
        num_classes,
        arrays,
        mean,
        std,
        scale=scale,
        train_subset=train_subset,
        test_subset=test_subset,
        seed=seed,
    )
