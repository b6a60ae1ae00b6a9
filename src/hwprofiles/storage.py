"""Checkpoint storage: a folder named by a local path or any fsspec URL (``s3://bucket/run1``,
``gs://...``, ``file:///shared/run1``, ``memory://run1`` within one process).

Training tasks on other machines leave their checkpoints here and return only a URL, so
the driver and its workers need no shared disk. A file is written under a temporary name
in the folder and then moved to its own name, so a reader never sees half of one.

A protocol's filesystem comes from its own package (``s3://`` needs s3fs, ``gs://``
gcsfs), installed on the driver and on every worker; credentials are read as that
package reads them (environment, configuration files). fsspec is imported on first use,
so the command line starts without it.

    >>> storage = open_storage("memory://doctest-run")
    >>> url = storage.put("m.pt", b"weights")
    >>> url, storage.exists("m.pt"), fetch(url)
    ('memory:///doctest-run/m.pt', True, b'weights')
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hwprofiles.errors import StorageError

STORAGE_ENV = "HWPROFILES_STORAGE"
WRITE_FIX = "give --storage (or $HWPROFILES_STORAGE) a folder or URL this user can write to, or fix its permissions"
READ_FIX = "check that it is there and that this user may read it"


def _filesystem(url: str) -> tuple[Any, str]:
    """fsspec's filesystem of ``url`` and the path within it, or a StorageError saying what to install."""
    import fsspec
    from fsspec.registry import known_implementations

    protocol = url.split("://", 1)[0] if "://" in url else "file"
    try:
        fs, path = fsspec.url_to_fs(url)
    except ImportError as exc:
        known = known_implementations.get(protocol, {})
        package = str(known.get("class", "")).split(".", 1)[0]
        install = f"`pip install {package}`" if package and package != "fsspec" else "install the package it names"
        raise StorageError(
            f"storage {url!r}: the filesystem of protocol '{protocol}' is not installed "
            f"({known.get('err') or exc}). Run {install} on the driver and on every worker, or give a local path."
        ) from None
    except ValueError as exc:
        raise StorageError(
            f"storage {url!r}: unknown protocol '{protocol}' ({exc}). Give a local path or an fsspec URL "
            "such as s3://bucket/run1, gs://bucket/run1 or file:///shared/run1."
        ) from None
    return fs, str(path).rstrip("/")


class Storage:
    """The folder of checkpoints at ``url`` (use :func:`open_storage`, which checks it).

    Only the URL travels to a worker (the object pickles as its URL); each process
    reaches the filesystem through fsspec, which caches it.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"Storage({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Storage) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def url_of(self, name: str) -> str:
        """The URL of file ``name`` in this folder."""
        fs, root = _filesystem(self.url)
        return str(fs.unstrip_protocol(f"{root}/{_plain(name)}"))

    def exists(self, name: str) -> bool:
        """Whether file ``name`` is in this folder."""
        fs, root = _filesystem(self.url)
        try:
            return bool(fs.exists(f"{root}/{_plain(name)}"))
        except OSError as exc:
            raise _error(self.url, "cannot be read", exc, READ_FIX) from None

    def put(self, name: str, data: bytes) -> str:
        """Write ``data`` as file ``name``: to a temporary name first, then moved to its own.
        Returns the file's URL.

        Raises:
            StorageError: the folder cannot be written (the file is then not there, nor a
                temporary one).
        """
        fs, root = _filesystem(self.url)
        final = f"{root}/{_plain(name)}"
        temporary = f"{root}/.{_plain(name)}.{uuid.uuid4().hex}.tmp"
        try:
            fs.makedirs(root, exist_ok=True)
            fs.pipe_file(temporary, data)
            fs.mv(temporary, final)
        except OSError as exc:
            try:
                fs.rm_file(temporary)
            except OSError:
                pass  # never written, or already gone
            raise _error(self.url, "cannot be written", exc, WRITE_FIX) from None
        return str(fs.unstrip_protocol(final))

    def check_writable(self) -> None:
        """Write a small file and remove it: fail now rather than after a training run.

        Raises:
            StorageError: the protocol is unknown, its package missing, or the folder cannot be written.
        """
        name = f".hwprofiles-probe-{uuid.uuid4().hex}"
        self.put(name, b"")
        fs, root = _filesystem(self.url)
        try:
            fs.rm_file(f"{root}/{name}")
        except OSError as exc:
            raise _error(self.url, "cannot be written", exc, WRITE_FIX) from None


def open_storage(location: str | Path | Storage) -> Storage:
    """The storage at ``location`` (a local path, relative ones made absolute, or an fsspec URL),
    checked: its filesystem is installed and the folder can be written.

    Raises:
        StorageError: saying what to install or where to write instead.
    """
    if isinstance(location, Storage):
        location = location.url
    fs, root = _filesystem(str(location))
    storage = Storage(str(fs.unstrip_protocol(root)))
    storage.check_writable()
    return storage


def fetch(url: str) -> bytes:
    """The bytes of the file at ``url``.

    Raises:
        StorageError: it cannot be read.
    """
    fs, path = _filesystem(url)
    try:
        return bytes(fs.cat_file(path))
    except OSError as exc:
        raise _error(url, "cannot be read", exc, READ_FIX) from None


def _plain(name: str) -> str:
    """``name`` if it is a plain file name (no folder)."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a plain file name")
    return name


def _error(url: str, what: str, exc: OSError, fix: str) -> StorageError:
    return StorageError(f"storage {url!r} {what} ({exc.strerror or exc}): {fix}.")
