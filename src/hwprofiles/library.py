"""The profile library on disk: import profiles into it, export them out of it.

Profiles a user imports go to the *user profile directory*
(:func:`~hwprofiles.profiles.user_profile_dir`), which the library searches like a
plugin's directory, under the provider name ``user``. Imports are all or nothing:

1. every file is read and validated first; any failure stops the import and is
   reported with its errors (or, with ``skip_invalid``, left out);
2. no profile name already in the target directory or anywhere in the library is
   replaced without ``force``;
3. files are written as resolved YAML (every default filled in), named
   ``<name>.yaml``, into a staging directory beside the target, then moved in one by
   one; if any move fails, the files moved so far are taken out again and any file
   they replaced is put back.

Archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) are read in memory, member by
member, never extracted to disk and never executed; an archive with a member whose
path is absolute or climbs out with ``..``, or with a link or device member, is
refused whole. So is one over the caps on members, member size and unpacked bytes
(:class:`ArchiveLimits`, checked while the archive streams by), and names from an
archive are escaped before they reach a message (docs/security.md).

    >>> from hwprofiles.library import export_profiles
    >>> export_profiles(["pcm-joshi2020"], "exported")  # doctest: +SKIP
    [PosixPath('exported/pcm-joshi2020.yaml')]
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import shutil
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from hwprofiles.errors import HwProfilesError, ProfileError, YamlError
from hwprofiles.profiles import (
    Profile,
    dump_profile,
    load_profile,
    parse_profile,
    profile_library,
    read_profile_file,
    user_profile_dir,
)
from hwprofiles.untrusted import MAX_YAML_BYTES, load_yaml, printable

IMPORT_SUFFIXES = (".yaml", ".yml", ".json")
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

# Moving files is one function so that tests can make a move fail and check the rollback.
_move = os.replace


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


@dataclass
class ImportResult:
    """What an import (or an install of fitted or translated profiles) did.

    Attributes:
        written: the files written, one per profile, in the target directory.
        replaced: the files whose profiles were replaced (``force``); now gone.
        skipped: the invalid candidates left out (``skip_invalid``).
    """

    written: list[Path] = field(default_factory=list)
    replaced: list[Path] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)


class InvalidProfilesError(ProfileError):
    """Some files offered for import are not valid profiles; nothing was imported.

    Attributes:
        failures: the invalid candidates, each with its errors.
    """

    def __init__(self, message: str, failures: list[Candidate]) -> None:
        super().__init__(message)
        self.failures = failures


# --------------------------------------------------------------------------- reading


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
            with zipfile.ZipFile(budget) as archive:  # type: ignore[arg-type]
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
                    if info.is_dir() or _is_hidden(parts) or not _has_suffix(info.filename, IMPORT_SUFFIXES):
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
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(raw)  # type: ignore[return-value]
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
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
                    if not member.isfile() or _is_hidden(parts) or not _has_suffix(member.name, IMPORT_SUFFIXES):
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
            if p.is_file() and _has_suffix(p.name, IMPORT_SUFFIXES) and not _is_hidden(p.relative_to(path).parts)
        )
        if not files:
            raise ProfileError(f"{printable(str(path))}: no *.yaml, *.yml or *.json files in this directory")
        return [_candidate_from_file(p) for p in files]
    if not path.exists():
        raise ProfileError(f"{printable(str(path))}: no such file or directory")
    name = path.name
    if _has_suffix(name, IMPORT_SUFFIXES):
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


# --------------------------------------------------------------------------- writing


def _fsync_write(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def plan_writes(
    texts: dict[Path, str], force: bool, problems: list[str]
) -> tuple[dict[Path, str], list[Path], list[Path]]:
    """Sort wanted files into (to write, of which existing to replace, already identical).

    A file that exists with other content is a problem (appended to ``problems``)
    unless ``force``.
    """
    files: dict[Path, str] = {}
    replace: list[Path] = []
    unchanged: list[Path] = []
    for dest, text in texts.items():
        if dest.exists():
            try:
                same = dest.read_text(encoding="utf-8") == text
            except (OSError, UnicodeDecodeError):
                same = False
            if same:
                unchanged.append(dest)
                continue
            if not force:
                problems.append(f"{dest} exists with other content; pass --force to replace it")
                continue
            replace.append(dest)
        files[dest] = text
    return files, replace, unchanged


def _commit(files: dict[Path, str], replace: Sequence[Path]) -> list[Path]:
    """Write ``files`` (destination -> text), taking the ``replace`` files out first.

    Everything is written into a staging directory beside the target directory
    (the same file system, so each move is an atomic rename), then moved in. On any
    failure every move is undone: the new files are removed and the replaced ones
    put back.
    """
    if not files:
        return []
    target = next(iter(files)).parent
    target.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".hwprofiles-staging-", dir=target.parent))
    moved_in: list[Path] = []
    set_aside: list[tuple[Path, Path]] = []
    try:
        staged: list[tuple[Path, Path]] = []
        for i, (dest, text) in enumerate(files.items()):
            tmp = staging / f"{i}-{dest.name}"
            _fsync_write(tmp, text)
            staged.append((tmp, dest))
        aside = staging / "replaced"
        aside.mkdir()
        for i, old in enumerate(replace):
            keep = aside / f"{i}-{old.name}"
            _move(old, keep)
            set_aside.append((old, keep))
        for tmp, dest in staged:
            _move(tmp, dest)
            moved_in.append(dest)
    except BaseException:
        for dest in reversed(moved_in):
            try:
                dest.unlink()
            except OSError:
                pass
        for old, keep in reversed(set_aside):
            try:
                os.replace(keep, old)
            except OSError:
                pass
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return moved_in


def _names_in(directory: Path) -> dict[str, list[Path]]:
    """Profile name -> the files in ``directory`` that declare it (read leniently)."""
    from hwprofiles.profiles import _files_in, _profile_name

    names: dict[str, list[Path]] = {}
    if directory.is_dir():
        for path in _files_in(directory):
            names.setdefault(_profile_name(path), []).append(path)
    return names


def _within(path: Path, root: Path) -> bool:
    path, root = path.resolve(), root.resolve()
    return path == root or root in path.parents


def _searched_by_library(directory: Path) -> bool:
    """Whether profiles written to ``directory`` would be found by :func:`profile_library`."""
    from hwprofiles.profiles import _sources

    # A root that does not exist yet (a fresh user directory) is searched once it does.
    return any(not root.is_file() and _within(directory, root) for root, _ in _sources())


def install_profiles(
    profiles: Sequence[Profile],
    to: str | Path | None = None,
    *,
    force: bool = False,
    sources: Sequence[str] | None = None,
) -> ImportResult:
    """Write profiles into a profile directory as ``<name>.yaml``, all or none.

    Args:
        profiles: the profiles to write.
        to: the directory; default the user profile directory.
        force: replace profiles of the same name in ``to``, and allow names the library
            already holds elsewhere when ``to`` is not searched by the library.
        sources: where each profile came from, for messages.

    Returns:
        What was written and replaced.

    Raises:
        ProfileError: two profiles share a name, or a name is taken (without ``force``,
            or where replacing it would leave two profiles of one name in the library).
            Nothing is written then.

    >>> import hwprofiles
    >>> install_profiles([hwprofiles.load_profile("ideal")], "lab", force=True)  # doctest: +SKIP
    """
    target = Path(to) if to is not None else user_profile_dir()
    if target.exists() and not target.is_dir():
        raise ProfileError(f"{target}: not a directory; give a directory to import into")
    labels = list(sources) if sources is not None else [p.name for p in profiles]

    seen: dict[str, str] = {}
    problems: list[str] = []
    for profile, label in zip(profiles, labels):
        if profile.name in seen:
            problems.append(
                f"two profiles to import are named '{profile.name}': {seen[profile.name]} and {label}. "
                "Rename one of them (its name: field)."
            )
        seen[profile.name] = label

    in_target = _names_in(target)
    library = profile_library()
    searched = _searched_by_library(target)
    replace: list[Path] = []
    for profile in profiles:
        name = profile.name
        dest = target / f"{name}.yaml"
        holders = in_target.get(name, [])
        if holders and not force:
            problems.append(
                f"'{name}' already exists in {target} ({', '.join(str(p) for p in holders)}); "
                "pass --force to replace it"
            )
        elif holders:
            replace.extend(holders)
        if dest.exists() and dest not in holders:
            problems.append(
                f"{dest} exists and holds another profile ({_names_of(dest, in_target)}); "
                "move it away first (it is never replaced, even with --force)"
            )
        source = library.get(name)
        if source is not None and not _within(source.path, target):
            where = f"{source.path} (from {source.provider})"
            if not force:
                problems.append(
                    f"'{name}' is already in the profile library: {where}; pass --force to import it anyway"
                )
            elif searched:
                problems.append(
                    f"cannot import '{name}' into {target} even with --force: the library also finds it in {where}, "
                    "and two profiles with one name would make the library unusable. Rename it (its name: field)."
                )
    if problems:
        raise ProfileError("nothing was imported:\n" + "\n".join(problems))

    files = {target / f"{p.name}.yaml": dump_profile(p) for p in profiles}
    written = _commit(files, list(dict.fromkeys(replace)))
    _forget_cached_library()
    return ImportResult(written=written, replaced=[p for p in dict.fromkeys(replace) if p not in written])


def _names_of(path: Path, names: dict[str, list[Path]]) -> str:
    held = [n for n, paths in names.items() if path in paths]
    return f"'{held[0]}'" if held else "not a valid profile"


def _forget_cached_library() -> None:
    # The cached library no longer matches the disk; forget it, but keep --profiles-dir.
    from hwprofiles import profiles

    with profiles._library_lock:
        profiles._library = None


def import_profiles(
    src: str | Path,
    to: str | Path | None = None,
    *,
    skip_invalid: bool = False,
    force: bool = False,
) -> ImportResult:
    """Import the profiles of a file, directory or archive into a profile directory.

    Args:
        src: a YAML or JSON file, a directory (searched recursively) or an archive.
        to: the directory to import into; default the user profile directory.
        skip_invalid: leave invalid files out instead of importing nothing.
        force: replace profiles of the same name (see :func:`install_profiles`).

    Returns:
        What was written, replaced and skipped.

    Raises:
        InvalidProfilesError: some files are invalid (and not ``skip_invalid``).
        ProfileError: ``src`` cannot be read, or a name is taken.

    >>> import_profiles("lab-profiles.zip")  # doctest: +SKIP
    """
    candidates = read_candidates(src)
    failures = [c for c in candidates if c.profile is None]
    if failures and not skip_invalid:
        raise InvalidProfilesError(
            f"nothing was imported: {len(failures)} of {len(candidates)} files are not valid profiles. "
            "Fix them, or pass --skip-invalid to import the others.",
            failures,
        )
    good = [c for c in candidates if c.profile is not None]
    if not good:
        raise InvalidProfilesError(
            f"nothing was imported: none of the {len(candidates)} files is a valid profile", failures
        )
    result = install_profiles(
        [c.profile for c in good],
        to,
        force=force,
        sources=[c.source for c in good],  # type: ignore[misc]
    )
    result.skipped = failures
    return result


def export_profiles(names: Sequence[str], to: str | Path, *, force: bool = False) -> list[Path]:
    """Write profiles, resolved (every default filled in), as ``<name>.yaml`` into ``to``.

    Args:
        names: profile names or profile files; the single name ``all`` exports the
            whole library.
        to: the directory to write into (created if missing).
        force: replace files that exist with other content.

    Returns:
        The files written (an existing file with the same content counts as written).

    Raises:
        ProfileError: a profile is unknown or invalid, or a file exists with other
            content (without ``force``). Nothing is written then.

    >>> export_profiles(["all"], "backup")  # doctest: +SKIP
    """
    target = Path(to)
    if target.exists() and not target.is_dir():
        raise ProfileError(f"{target}: not a directory; give a directory to export into")
    wanted = list(profile_library()) if "all" in names else list(dict.fromkeys(names))
    profiles: list[Profile] = []
    problems: list[str] = []
    for name in wanted:
        try:
            profiles.append(load_profile(name))
        except HwProfilesError as exc:
            problems.append(str(exc))
    by_name: dict[str, int] = {}
    for profile in profiles:
        by_name[profile.name] = by_name.get(profile.name, 0) + 1
    problems += [
        f"'{n}' was asked for {k} times (as names or files); export it once" for n, k in by_name.items() if k > 1
    ]
    files, replace, unchanged = plan_writes(
        {target / f"{profile.name}.yaml": dump_profile(profile) for profile in profiles}, force, problems
    )
    if problems:
        raise ProfileError("nothing was exported:\n" + "\n".join(problems))
    written = _commit(files, replace)
    order = {p.name: i for i, p in enumerate(profiles)}
    return sorted(written + unchanged, key=lambda p: order.get(p.stem, 0))
