"""Reading profiles offered for import: a file, a directory, or an archive, all untrusted.

Archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) are read in memory, member by
member, never extracted to disk and never executed; an archive with a member whose
path is absolute or climbs out with ``..``, or with a link or device member, is
refused whole. So is one over the caps on members, member size and unpacked bytes
(:class:`ArchiveLimits`, checked while the archive streams by), and names from an
archive are escaped before they reach a message (docs/security.md).

    >>> from hwprofiles.profiles.archives import read_candidates
    >>> [c.source for c in read_candidates("lab-profiles.zip")]  # doctest: +SKIP
    ['lab-profiles.zip:pcm-lab.yaml']
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from hwprofiles.errors import ProfileError, YamlError
from hwprofiles.profiles.schema import PROFILE_FILE_SUFFIXES, Profile, parse_profile, read_profile_file
from hwprofiles.untrusted import MAX_YAML_BYTES, load_yaml, printable

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

# Caps on what an archive may make hwprofiles read (docs/security.md). A profile is a
# few kB and a lab's library a few hundred of them, so no real archive comes near.
MAX_MEMBERS = 10_000
"""Members (files and folders) an archive may hold; listing stops at the next one."""
MAX_MEMBER_BYTES = MAX_YAML_BYTES
"""Bytes one profile member may unpack to; at most one byte more is ever read of it."""
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
"""Bytes unpacked from one archive in all: tar headers and skipped members count."""
MAX_ZIP_DIRECTORY_BYTES = 4 * 1024 * 1024
"""Bytes of a zip's central directory (its table of contents), read before any member."""


@dataclass(frozen=True)
class ArchiveLimits:
    """The caps :func:`read_candidates` enforces on an archive (the ``MAX_*`` constants by default).

    Attributes:
        members: the most members (files and folders).
        member_bytes: the largest profile member, unpacked.
        unpacked_bytes: the most bytes unpacked from the archive in all.
        zip_directory_bytes: the largest zip central directory.
    """

    members: int = MAX_MEMBERS
    member_bytes: int = MAX_MEMBER_BYTES
    unpacked_bytes: int = MAX_UNPACKED_BYTES
    zip_directory_bytes: int = MAX_ZIP_DIRECTORY_BYTES


DEFAULT_ARCHIVE_LIMITS = ArchiveLimits()


@dataclass(frozen=True)
class Candidate:
    """One file offered for import: its profile, or why it is not one.

    Attributes:
        source: where it came from: a path, or ``ARCHIVE:MEMBER``.
        profile: the validated profile, or ``None``.
        error: the validation errors (one line each, prefixed by ``source``), or ``None``.
    """

    source: str
    profile: Profile | None = None
    error: str | None = None


def _is_hidden(parts: Iterable[str]) -> bool:
    # Editor backups, .git and macOS resource forks (__MACOSX/._x.yaml) are no profiles.
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _has_suffix(name: str, suffixes: tuple[str, ...]) -> bool:
    return name.lower().endswith(suffixes)


def _candidate_from_bytes(data: bytes, source: str) -> Candidate:
    try:
        return Candidate(source, profile=parse_profile(load_yaml(data, source), source=source))
    except (YamlError, ProfileError) as exc:
        return Candidate(source, error=str(exc))


def _refuse(archive: Path, why: str) -> ProfileError:
    return ProfileError(f"{printable(str(archive))}: refusing this archive: {why}")


def _check_member_path(archive: Path, member: str) -> None:
    unix = member.replace("\\", "/")
    pure = PurePosixPath(unix)
    if unix.startswith("/") or re.match(r"^[A-Za-z]:", unix):
        raise _refuse(
            archive,
            f"member '{printable(member)}' has an absolute path. Repack it with paths relative to its top directory.",
        )
    if ".." in pure.parts:
        raise _refuse(
            archive,
            f"member '{printable(member)}' climbs out of the archive with '..'. "
            "Repack it with paths inside its top directory.",
        )


def _too_big(archive: Path, member: str, size: int | str, limits: ArchiveLimits) -> ProfileError:
    return _refuse(
        archive,
        f"member '{printable(member)}' holds {size} bytes, more than a profile file may "
        f"({limits.member_bytes}); is it a profile?",
    )


def _too_many(archive: Path, limits: ArchiveLimits) -> ProfileError:
    return _refuse(archive, f"more than {limits.members} members (a profile archive holds far fewer)")


def _too_much(archive: Path, limits: ArchiveLimits) -> ProfileError:
    return _refuse(archive, f"it unpacks to more than {limits.unpacked_bytes} bytes (a profile archive holds far less)")


def _read_member(handle: IO[bytes], archive: Path, member: str, limits: ArchiveLimits) -> bytes:
    # One byte over the cap tells a member that is too big, whatever its header says.
    data = handle.read(limits.member_bytes + 1)
    if len(data) > limits.member_bytes:
        raise _too_big(archive, member, f"over {limits.member_bytes}", limits)
    return data


# What a corrupt or hostile archive can raise from the standard library's readers.
_ARCHIVE_FAILURES = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    zlib.error,
    lzma.LZMAError,
    struct.error,
    UnicodeError,
)


class _Budget:
    """A read-only binary file that refuses, with ``error``, to be read beyond a budget.

    ``total`` caps the position reached (how much of a decompressed stream is
    produced); ``per_read`` caps a single read (a zip's central directory is read in
    one call). Nothing beyond either is ever asked of the wrapped file.
    """

    def __init__(
        self, raw: IO[bytes], error: Callable[[], ProfileError], total: int | None = None, per_read: int | None = None
    ) -> None:
        self._raw, self._error, self._total, self._per_read = raw, error, total, per_read
        self.name = getattr(raw, "name", None)

    def read(self, size: int | None = -1) -> bytes:
        caps = [
            c
            for c in (self._per_read, None if self._total is None else self._total - self._raw.tell())
            if c is not None
        ]
        if size is None or size < 0:
            if not caps:
                return self._raw.read()
            data = self._raw.read(min(caps) + 1)
            if len(data) > min(caps):
                raise self._error()
            return data
        if caps and size > min(caps):
            raise self._error()
        return self._raw.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0 and self._total is not None and offset > self._total:
            raise self._error()
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass  # the caller closes the wrapped file


def _zip_candidates(path: Path, limits: ArchiveLimits) -> list[Candidate]:
    found: list[Candidate] = []
    unpacked = 0
    with open(path, "rb") as raw:
        budget = _Budget(
            raw,
            lambda: _refuse(
                path,
                f"its table of contents is over {limits.zip_directory_bytes} bytes (a profile archive needs far less)",
            ),
            per_read=max(limits.zip_directory_bytes, limits.member_bytes + 1),
        )
        try:
            with zipfile.ZipFile(budget) as archive:
                infos = archive.infolist()
                if len(infos) > limits.members:
                    raise _too_many(path, limits)
                for info in infos:  # check every path before reading any member
                    _check_member_path(path, info.filename)
                    mode = info.external_attr >> 16
                    if (mode & 0o170000) == 0o120000:
                        raise _refuse(path, f"member '{printable(info.filename)}' is a symbolic link")
                for info in infos:
                    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                    if info.is_dir() or _is_hidden(parts) or not _has_suffix(info.filename, PROFILE_FILE_SUFFIXES):
                        continue
                    if info.file_size > limits.member_bytes:
                        raise _too_big(path, info.filename, info.file_size, limits)
                    source = f"{printable(str(path))}:{printable(info.filename)}"
                    try:
                        with archive.open(info) as handle:
                            data = _read_member(handle, path, info.filename, limits)
                    except ProfileError:
                        raise
                    except _ARCHIVE_FAILURES as exc:  # encrypted, corrupt, a lying header
                        found.append(
                            Candidate(source, error=f"{source}: cannot be read from the archive: {printable(str(exc))}")
                        )
                        continue
                    unpacked += len(data)
                    if unpacked > limits.unpacked_bytes:
                        raise _too_much(path, limits)
                    found.append(_candidate_from_bytes(data, source))
        except ProfileError:
            raise
        except _ARCHIVE_FAILURES as exc:
            raise ProfileError(f"{printable(str(path))}: not a valid zip archive: {printable(str(exc))}") from None
    return found


def _decompressed(raw: IO[bytes]) -> IO[bytes]:
    """The tar stream inside a (possibly compressed) file, by its magic bytes."""
    magic = raw.read(6)
    raw.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)
    return raw


def _tar_candidates(path: Path, limits: ArchiveLimits) -> list[Candidate]:
    found: list[Candidate] = []
    count = 0
    try:
        with open(path, "rb") as raw, _decompressed(raw) as stream:
            # The budget caps what is decompressed, headers included: a long-name or
            # pax header claiming gigabytes is refused before it is read.
            budget = _Budget(stream, lambda: _too_much(path, limits), total=limits.unpacked_bytes)
            with tarfile.open(fileobj=budget, mode="r:") as archive:  # type: ignore[call-overload]
                # Members are checked as they stream by; a bad one refuses the whole
                # archive, so nothing read before it is ever imported.
                while (member := archive.next()) is not None:
                    count += 1
                    if count > limits.members:
                        raise _too_many(path, limits)
                    _check_member_path(path, member.name)
                    if member.issym() or member.islnk():
                        raise _refuse(path, f"member '{printable(member.name)}' is a link")
                    if not (member.isfile() or member.isdir()):
                        raise _refuse(
                            path, f"member '{printable(member.name)}' is a device, pipe or other special file"
                        )
                    parts = PurePosixPath(member.name).parts
                    if not member.isfile() or _is_hidden(parts) or not _has_suffix(member.name, PROFILE_FILE_SUFFIXES):
                        continue
                    if member.size > limits.member_bytes:
                        raise _too_big(path, member.name, member.size, limits)
                    handle = archive.extractfile(member)  # a file object in memory; nothing is written
                    data = _read_member(handle, path, member.name, limits) if handle is not None else b""
                    found.append(_candidate_from_bytes(data, f"{printable(str(path))}:{printable(member.name)}"))
    except ProfileError:
        raise
    except _ARCHIVE_FAILURES as exc:
        raise ProfileError(f"{printable(str(path))}: not a valid tar archive: {printable(str(exc))}") from None
    return found


def read_candidates(src: str | Path, *, limits: ArchiveLimits = DEFAULT_ARCHIVE_LIMITS) -> list[Candidate]:
    """Every profile file in ``src``, validated: a file, a directory (searched
    recursively) or an archive, read within ``limits``.

    Raises:
        ProfileError: ``src`` does not exist, holds no profile files, is of an unknown
            type, or is an unsafe or corrupt archive.
    """
    path = Path(src)
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and _has_suffix(p.name, PROFILE_FILE_SUFFIXES) and not _is_hidden(p.relative_to(path).parts)
        )
        if not files:
            raise ProfileError(f"{printable(str(path))}: no *.yaml, *.yml or *.json files in this directory")
        return [_candidate_from_file(p) for p in files]
    if not path.exists():
        raise ProfileError(f"{printable(str(path))}: no such file or directory")
    name = path.name
    if _has_suffix(name, PROFILE_FILE_SUFFIXES):
        return [_candidate_from_file(path)]
    if _has_suffix(name, ZIP_SUFFIXES):
        found = _zip_candidates(path, limits)
    elif _has_suffix(name, TAR_SUFFIXES):
        found = _tar_candidates(path, limits)
    else:
        raise ProfileError(
            f"{printable(str(path))}: not a profile file (.yaml, .yml, .json) nor an archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz)"
        )
    if not found:
        raise ProfileError(f"{printable(str(path))}: no *.yaml, *.yml or *.json files in this archive")
    return found


def _candidate_from_file(path: Path) -> Candidate:
    try:
        return Candidate(printable(str(path)), profile=read_profile_file(path))
    except ProfileError as exc:
        return Candidate(printable(str(path)), error=str(exc))
