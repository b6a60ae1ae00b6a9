"""Installing profiles into a profile directory, and exporting them out of the library.

Profiles a user imports go to the *user profile directory*
(:func:`~hwprofiles.profiles.library.user_profile_dir`), which the library searches like a
plugin's directory, under the provider name ``user``. Imports are all or nothing:

1. every file is read and validated first (:mod:`hwprofiles.profiles.archives`); any
   failure stops the import and is reported with its errors (or, with
   ``skip_invalid``, left out);
2. no profile name already in the target directory or anywhere in the library is
   replaced without ``force``;
3. files are written as resolved YAML (every default filled in), named
   ``<name>.yaml``, into a staging directory beside the target, then moved in one by
   one; if any move fails, the files moved so far are taken out again and any file
   they replaced is put back (:func:`commit_files`).

    >>> from hwprofiles.profiles.install import export_profiles
    >>> export_profiles(["pcm-joshi2020"], "exported")  # doctest: +SKIP
    [PosixPath('exported/pcm-joshi2020.yaml')]
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hwprofiles.errors import HwProfilesError, InvalidProfilesError, ProfileError
from hwprofiles.profiles import library
from hwprofiles.profiles.archives import Candidate, read_candidates
from hwprofiles.profiles.library import load_profile, profile_files, profile_library, profile_name, user_profile_dir
from hwprofiles.profiles.schema import Profile, dump_profile

# Moving files is one function so that tests can make a move fail and check the rollback.
_move = os.replace


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


def commit_files(files: dict[Path, str], replace: Sequence[Path]) -> list[Path]:
    """Write ``files`` (destination -> text, all in one directory), taking the
    ``replace`` files out first; all of them, or none.

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
    names: dict[str, list[Path]] = {}
    if directory.is_dir():
        for path in profile_files(directory):
            names.setdefault(profile_name(path), []).append(path)
    return names


def _within(path: Path, root: Path) -> bool:
    path, root = path.resolve(), root.resolve()
    return path == root or root in path.parents


def _searched_by_library(directory: Path) -> bool:
    """Whether profiles written to ``directory`` would be found by :func:`profile_library`."""
    # A root that does not exist yet (a fresh user directory) is searched once it does.
    return any(not root.is_file() and _within(directory, root) for root, _ in library.search_roots())


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
    in_library = profile_library()
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
        source = in_library.get(name)
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
    written = commit_files(files, list(dict.fromkeys(replace)))
    library.invalidate()  # the library found so far no longer matches the disk
    return ImportResult(written=written, replaced=[p for p in dict.fromkeys(replace) if p not in written])


def _names_of(path: Path, names: dict[str, list[Path]]) -> str:
    held = [n for n, paths in names.items() if path in paths]
    return f"'{held[0]}'" if held else "not a valid profile"


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
    good = [(c.profile, c.source) for c in candidates if c.profile is not None]
    if not good:
        raise InvalidProfilesError(
            f"nothing was imported: none of the {len(candidates)} files is a valid profile", failures
        )
    result = install_profiles([p for p, _ in good], to, force=force, sources=[s for _, s in good])
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
    written = commit_files(files, replace)
    order = {p.name: i for i, p in enumerate(profiles)}
    return sorted(written + unchanged, key=lambda p: order.get(p.stem, 0))
