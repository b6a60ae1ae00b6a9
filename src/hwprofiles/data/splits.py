"""The loaded dataset (:class:`DatasetSplits`), its normalisation, subsets and loaders.

Every split lives in memory as one float tensor, normalised once with the training
split's per-channel mean and standard deviation. The study's noise levels are
absolute (a sigma on inputs and activations), so they mean the same thing on every
dataset only when the inputs have unit variance.
"""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

from hwprofiles.errors import DatasetError  # also importable from here, where it was defined before


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset ready for training: both splits in memory, normalised.

    Attributes:
        train: the training split; yields ``(image, label)``, images ``(C, H, W)`` float32.
        test: the test split, normalised with the training split's statistics.
        in_channels: ``C``.
        num_classes: the number of labels (labels are ``0 .. num_classes - 1``).
        image_size: ``H`` (= ``W``).
        name: the canonical dataset name (``fashion-mnist``).
        source: where it was found (a directory), or how it was made.
        mean: per-channel mean subtracted, on the ``[0, 1]`` pixel scale for image
            files (the scale torchvision's ``Normalize`` constants use).
        std: per-channel standard deviation divided by, on the same scale.
    """

    train: Dataset
    test: Dataset
    in_channels: int
    num_classes: int
    image_size: int
    name: str
    source: str
    mean: tuple[float, ...]
    std: tuple[float, ...]


def channel_stats_uint8(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and (population) std of ``uint8`` images ``(N, C, H, W)``.

    Counting the 256 levels is exact, needs no float copy of the data, and is quick.
    Both results are on the ``0 .. 255`` scale.
    """
    levels = np.arange(256, dtype=np.float64)
    means, stds = [], []
    for c in range(images.shape[1]):
        # torch counts uint8 directly; numpy's bincount would first widen to int64
        channel = torch.from_numpy(np.ascontiguousarray(images[:, c]).reshape(-1))
        counts = torch.bincount(channel, minlength=256).numpy().astype(np.float64)
        n = counts.sum()
        mean = (counts * levels).sum() / n
        means.append(mean)
        stds.append(np.sqrt((counts * (levels - mean) ** 2).sum() / n))
    return np.array(means), np.array(stds)


def channel_stats_float(images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of float images ``(N, C, H, W)``, in float64."""
    per_channel = images.transpose(0, 1).reshape(images.shape[1], -1).double()
    return per_channel.mean(dim=1).numpy(), per_channel.std(dim=1, correction=0).numpy()


def normalize(images: np.ndarray | torch.Tensor, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    """``(images - mean) / std`` per channel, as a new float32 tensor ``(N, C, H, W)``."""
    if isinstance(images, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(images)).to(torch.float32)
    else:
        out = images.to(torch.float32, copy=True)
    shape = (1, -1, 1, 1)
    out.sub_(torch.as_tensor(mean, dtype=torch.float32).view(shape))
    out.div_(torch.as_tensor(std, dtype=torch.float32).view(shape))
    return out


def subset_indices(n: int, size: int | None, *, seed: int, stream: int, what: str) -> np.ndarray | None:
    """Sorted indices of a seeded random subset of ``size`` out of ``n``, or None for all.

    ``stream`` keeps the training and test subsets independent draws for one seed.

    Raises:
        DatasetError: ``size`` is not between 1 and ``n``.
    """
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= n:
        raise DatasetError(f"{what}={size!r} must be a whole number from 1 to {n}, the size of the split.")
    rng = np.random.default_rng([seed, stream])
    return np.sort(rng.choice(n, size=int(size), replace=False))


class Loaders(NamedTuple):
    """The training and test loaders :func:`make_loaders` returns."""

    train: DataLoader
    test: DataLoader


def _loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int) -> DataLoader:
    # The loader owns a generator even when it does not shuffle: otherwise each pass
    # draws its base seed from torch's global RNG and shifts every later random draw.
    generator = torch.Generator().manual_seed(seed)
    sized = cast(Sized, dataset)  # a split held in memory knows its length; torch's Dataset type does not say so
    sampler = RandomSampler(sized, generator=generator) if shuffle else SequentialSampler(sized)
    if isinstance(dataset, TensorDataset):
        # Index a whole batch at once instead of collating batch_size single samples:
        # the same batches, many times faster on in-memory tensors.
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=BatchSampler(sampler, batch_size, drop_last=False),
            num_workers=0,
            generator=generator,
        )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=0, generator=generator)


def make_loaders(
    splits: DatasetSplits,
    batch_size: int,
    *,
    seed: int,
    shuffle: bool = True,
    test_batch_size: int | None = None,
) -> Loaders:
    """Training and test :class:`~torch.utils.data.DataLoader` s, seeded and single-process.

    The training loader reshuffles every epoch from its own generator, so a run is
    repeatable from ``seed`` and iterating it leaves torch's global RNG alone. The
    test loader keeps the split's order. In-memory splits are served a batch at a
    time (``loader.batch_size`` is then None; the batches are the same).

    Args:
        splits: what :func:`~hwprofiles.data.load_dataset` returned.
        batch_size: training batch size (the last batch may be smaller).
        seed: seeds the training order.
        shuffle: shuffle the training split each epoch.
        test_batch_size: test batch size; defaults to ``batch_size``.

    Returns:
        ``Loaders(train, test)``, a named tuple; each batch is ``[images, labels]``.

    >>> from hwprofiles.data import load_dataset, make_loaders
    >>> train, test = make_loaders(load_dataset("synthetic"), 64, seed=0)
    >>> images, labels = next(iter(train))
    >>> tuple(images.shape), tuple(labels.shape)
    ((64, 1, 28, 28), (64,))
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DatasetError(f"batch_size={batch_size!r} must be a positive whole number.")
    test_batch_size = batch_size if test_batch_size is None else test_batch_size
    if isinstance(test_batch_size, bool) or not isinstance(test_batch_size, int) or test_batch_size < 1:
        raise DatasetError(f"test_batch_size={test_batch_size!r} must be a positive whole number.")
    return Loaders(
        _loader(splits.train, batch_size, shuffle=shuffle, seed=seed),
        _loader(splits.test, test_batch_size, shuffle=False, seed=seed),
    )
