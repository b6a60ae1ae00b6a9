"""Datasets for the experiments, loaded into memory and normalised once.

    >>> from hwprofiles.data import load_dataset, make_loaders
    >>> splits = load_dataset("synthetic")
    >>> train, test = make_loaders(splits, batch_size=64, seed=0)
    >>> splits.num_classes, len(splits.train)
    (10, 512)

Fashion-MNIST (the default) and MNIST are read from IDX files with numpy, so the
common path needs no torchvision; CIFAR-10/100 and SVHN import it when asked for.
"""

from __future__ import annotations

from hwprofiles.data.datasets import DEFAULT_DATASET, list_datasets, load_dataset
from hwprofiles.data.idx import read_idx
from hwprofiles.data.locate import DATA_ENV_VAR, DEBIAN_DATASET_DIRS, default_data_root, search_places
from hwprofiles.data.splits import DatasetSplits, Loaders, make_loaders
from hwprofiles.data.synthetic import make_synthetic
from hwprofiles.errors import DatasetError

__all__ = [
    "DATA_ENV_VAR",
    "DEBIAN_DATASET_DIRS",
    "DEFAULT_DATASET",
    "DatasetError",
    "DatasetSplits",
    "Loaders",
    "default_data_root",
    "list_datasets",
    "load_dataset",
    "make_loaders",
    "make_synthetic",
    "read_idx",
    "search_places",
]
