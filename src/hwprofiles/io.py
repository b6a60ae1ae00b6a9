"""Atomic file writes: nothing a user made is left half-written.

A file is written to a temporary sibling, flushed to disk, then renamed into place.
A crash mid-write leaves the previous file (or none), never a truncated one; the
temporary file of a writer that was killed is removed by the next write to the
same path. Written files get the permissions the user's umask gives new files.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from hwprofiles.errors import OutputError

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere (--out)",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere (--out)",
    errno.EROFS: "it is on a read-only file system: write elsewhere (--out)",
    errno.EACCES: "permission denied: write elsewhere (--out) or change the folder's permissions",
    errno.EPERM: "permission denied: write elsewhere (--out) or change the folder's permissions",
}


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete temporary siblings of ``path`` left by writers that no longer run."""
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def output_error(path: str | Path, exc: OSError) -> OutputError:
    """One message for a failed write: the path, the cause, and what to do."""
    hint = _HINTS.get(exc.errno or -1, "check the folder and the disk, or write elsewhere (--out)")
    return OutputError(f"{path}: cannot be written ({exc.strerror or exc}); {hint}. Files written before are kept.")


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temporary file beside ``path``, then rename it into place.

    Raises:
        OutputError: the folder cannot be written or the disk is full (``path`` is untouched).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a written file follows the umask
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise output_error(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_write(path) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)
