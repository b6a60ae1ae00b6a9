"""Where datasets are looked for, and the message when none of those places has one.

A root given with ``root=`` (the ``--data-root`` option) is the only place looked
in: a torchvision dataset root, or a flat folder holding the dataset's files. The
data are read from there or refused, never quietly taken from somewhere else.
Without one, roots are searched in this order, the first holding a complete copy
winning:

1. the ``HWPROFILES_DATA`` environment variable: a torchvision root (or flat folder);
2. a Debian package's directory, for the datasets Debian ships
   (``apt-get install dataset-fashion-mnist`` puts Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist``);
3. ``$XDG_CACHE_HOME/hwprofiles/data`` (``~/.cache/hwprofiles/data``), where
   ``download=True`` saves when no root was given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DATA_ENV_VAR = "HWPROFILES_DATA"
"""Environment variable naming a torchvision dataset root searched after ``root=``."""

DEBIAN_DATASET_DIRS: dict[str, Path] = {
    "fashion-mnist": Path("/usr/share/datasets/fashion-mnist"),
}
"""Dataset name -> directory a Debian package installs its files in (flat, not a torchvision root)."""

DEBIAN_PACKAGES: dict[str, str] = {
    "fashion-mnist": "dataset-fashion-mnist",
}
"""Dataset name -> the Debian package that ships it."""


def default_data_root() -> Path:
    """The download target when neither ``root=`` nor ``HWPROFILES_DATA`` is set.

    >>> default_data_root().parts[-2:]
    ('hwprofiles', 'data')
    """
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "hwprofiles" / "data"


@dataclass(frozen=True)
class Place:
    """One place a dataset was looked for.

    Attributes:
        path: the directory (or file) looked at.
        origin: why it was looked at, in the words a user set it with
            (``--data-root``, ``$HWPROFILES_DATA``, ...).
    """

    path: Path
    origin: str


def search_places(name: str, root: str | os.PathLike[str] | None, subdir: str = "") -> list[Place]:
    """The places to look for dataset ``name``, in search order, without duplicates.

    Args:
        name: the dataset name; its Debian directory, if it has one, comes before the cache.
        root: the explicit root (``--data-root``), or None.
        subdir: where the dataset sits inside a torchvision root (``FashionMNIST/raw``).

    >>> [p.origin for p in search_places("fashion-mnist", "/data", "FashionMNIST/raw")][0]
    '--data-root'
    """

    def root_places(path: Path, origin: str) -> list[Place]:
        # a torchvision root (files under subdir), or the files right there
        return [Place(path / subdir, origin), Place(path, origin)]

    if root is not None:  # the user's choice: used or refused, no fallback elsewhere
        places = root_places(Path(root).expanduser(), "--data-root")
    else:
        env = os.environ.get(DATA_ENV_VAR)
        places = root_places(Path(env).expanduser(), f"${DATA_ENV_VAR}") if env else []
        debian = DEBIAN_DATASET_DIRS.get(name)
        if debian is not None:
            places.append(Place(debian, f"Debian package {DEBIAN_PACKAGES.get(name, '?')}"))
        places.append(Place(default_data_root() / subdir, "default download location"))
    seen: set[Path] = set()
    unique = []
    for place in places:
        if place.path not in seen:
            seen.add(place.path)
            unique.append(place)
    return unique


def download_root(root: str | os.PathLike[str] | None) -> Path:
    """Where ``download=True`` saves: ``root``, else ``$HWPROFILES_DATA``, else the cache."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env).expanduser() if env else default_data_root()


def not_found_message(
    name: str,
    title: str,
    looked: Sequence[tuple[Place, str]],
    *,
    layout: str,
    root: str | os.PathLike[str] | None,
    download_error: str | None = None,
) -> str:
    """The one message a missing dataset produces: every place looked, and how to get it.

    Args:
        name: the dataset name (``fashion-mnist``).
        title: its display name (``Fashion-MNIST``).
        looked: each place with what was wrong there (``does not exist``, ``no ...``).
        layout: what a torchvision root must hold (``FashionMNIST/raw/``).
        root: the explicit root, to say where a download would go.
        download_error: why a download attempt failed, if one was made.
    """
    lines = []
    if download_error is not None:
        lines.append(f"{title} could not be downloaded to {download_root(root)}: {download_error}")
    lines.append(f"{title} ({name}) was not found. Looked in:")
    lines += [f"  - {place.path} ({place.origin}): {problem}" for place, problem in looked]
    ways = []
    package = DEBIAN_PACKAGES.get(name)
    if package is not None:
        ways.append(f"apt-get install {package}   (Debian/Ubuntu; offline)")
    ways.append(
        f"pass --data-root DIR (root= in Python, or set ${DATA_ENV_VAR}) "
        f"pointing at a torchvision dataset root that holds {layout}"
    )
    ways.append(f"pass --download (download=True) when online; it saves to {download_root(root)}")
    lines.append("To get it:")
    lines += [f"  - {'or ' if i else ''}{way}" for i, way in enumerate(ways)]
    return "\n".join(lines)
