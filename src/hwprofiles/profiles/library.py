"""The profile library: every profile that can be loaded by name, and where it lies.

Profiles are searched for, in this order, in the files and directories plugins
contribute (the shipped profiles are the built-in plugin's), the user profile
directory, ``$HWPROFILES_PATH`` and ``--profiles-dir``. Two files declaring one name
make the library refuse to guess.

    >>> "pcm-joshi2020" in list_profiles()
    True
    >>> load_profile("pcm-joshi2020").technology
    'pcm'
"""

from __future__ import annotations

import fnmatch
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from hwprofiles import plugins
from hwprofiles.errors import PluginHookError, ProfileError, UnknownProfileError, YamlError
from hwprofiles.named_registry import did_you_mean
from hwprofiles.profiles.schema import PROFILE_FILE_SUFFIXES, PROFILE_SUFFIXES, Profile, read_profile_file
from hwprofiles.untrusted import printable, read_yaml_file

PATH_ENV = "HWPROFILES_PATH"
USER_DIR_ENV = "HWPROFILES_USER_DIR"
HOOK = "hwprofiles_profile_paths"


@dataclass(frozen=True)
class ProfileSource:
    """Where a profile file was found."""

    name: str
    path: Path
    provider: str  # plugin name, "user", "HWPROFILES_PATH" or "--profiles-dir"


_lock = threading.RLock()
_library: dict[str, ProfileSource] | None = None
_extra_dirs: list[Path] = []


def add_profile_dirs(*paths: str | Path) -> None:
    """Search further files or directories for profiles (what ``--profiles-dir`` does)."""
    global _library
    with _lock:
        _extra_dirs.extend(Path(p) for p in paths)
        _library = None


def invalidate() -> None:
    """Forget what was found, so that the next use searches again (files were written);
    directories added with :func:`add_profile_dirs` are kept."""
    global _library
    with _lock:
        _library = None


def reset() -> None:
    """Forget what was found and the directories added with :func:`add_profile_dirs`."""
    with _lock:
        invalidate()
        _extra_dirs.clear()


plugins.on_reset(reset)  # the plugins' directories may differ next time


def profile_files(path: Path) -> list[Path]:
    """The profile files at ``path``: the file itself, or a directory's ``*.yaml`` and
    ``*.yml`` files at any depth, sorted (none if ``path`` does not exist)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in PROFILE_SUFFIXES and p.is_file())
    if path.is_file():
        return [path]
    return []


def user_profile_dir() -> Path:
    """The user's own profile directory, searched like a plugin's (provider ``user``).

    ``$HWPROFILES_USER_DIR`` if set, else ``$XDG_CONFIG_HOME/hwprofiles/profiles``
    (``~/.config/hwprofiles/profiles`` without XDG_CONFIG_HOME). It need not exist.
    """
    explicit = os.environ.get(USER_DIR_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(Path("~/.config").expanduser())
    return Path(config) / "hwprofiles" / "profiles"


def _plugin_paths() -> list[tuple[Path, str]]:
    """The profile files and folders plugins contribute, each with its plugin's name.

    A ``hwprofiles_profile_paths`` hook that raises or returns something other than
    a list of paths, and a path that does not exist, are skipped with a
    :class:`~hwprofiles.errors.PluginWarning` naming the plugin (a
    :class:`~hwprofiles.errors.PluginError` under ``HWPROFILES_STRICT_PLUGINS``).
    """
    found: list[tuple[Path, str]] = []
    for impl in plugins.implementations(HOOK):
        try:
            result = impl()
        except PluginHookError as exc:
            plugins.plugin_problem(impl.info, f"{exc.reason}; its profiles are left out")
            continue
        if result is None:
            continue
        if not isinstance(result, (list, tuple)):
            plugins.plugin_problem(
                impl.info,
                f"hook {HOOK} returned {_shown(result)}, not a list of paths; "
                "its profiles are left out (return [path, ...])",
            )
            continue
        for item in result:
            if not isinstance(item, (str, os.PathLike)):
                plugins.plugin_problem(
                    impl.info, f"hook {HOOK} returned {_shown(item)} in its list, not a path; it is skipped"
                )
            elif not Path(item).exists():
                plugins.plugin_problem(
                    impl.info, f"hook {HOOK} gave {_shown(str(Path(item)))}, which does not exist; it is skipped"
                )
            else:
                found.append((Path(item), impl.info.name))
    return found


def _shown(value: object) -> str:
    text = printable(repr(value))
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{type(value).__name__} {text}" if not isinstance(value, str) else text


def search_roots() -> list[tuple[Path, str]]:
    """Where the library searches, in order: each file or directory with its provider
    (a plugin's name, ``user``, ``HWPROFILES_PATH`` or ``--profiles-dir``)."""
    found = _plugin_paths()
    found.append((user_profile_dir(), "user"))
    for raw in os.environ.get(PATH_ENV, "").split(os.pathsep):
        if raw.strip():
            found.append((Path(raw.strip()), PATH_ENV))
    with _lock:
        found.extend((p, "--profiles-dir") for p in _extra_dirs)
    return found


def profile_name(path: Path) -> str:
    """The name a profile file declares, read leniently: a file too broken to say
    (it still fails loudly when loaded) is named by its stem."""
    try:
        data = read_yaml_file(path)
    except YamlError:
        return path.stem
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        return data["name"]
    return path.stem


def profile_library() -> dict[str, ProfileSource]:
    """Every profile name that can be loaded, and where it comes from.

    Raises:
        ProfileError: two files declare the same name (both are named).
    """
    global _library
    with _lock:
        if _library is not None:
            return _library
        library: dict[str, ProfileSource] = {}
        for root, provider in search_roots():
            for path in profile_files(root):
                name = profile_name(path)
                previous = library.get(name)
                if previous is not None and previous.path.resolve() != path.resolve():
                    raise ProfileError(
                        f"two profiles are named '{name}': {previous.path} (from {previous.provider}) and "
                        f"{path} (from {provider}). Rename one of them."
                    )
                library[name] = ProfileSource(name, path, provider)
        _library = dict(sorted(library.items()))
        return _library


def list_profiles(pattern: str = "*") -> list[str]:
    """Sorted names of every profile found (shipped, from plugins and from user directories)
    that match an ``fnmatch`` pattern (case-sensitive, as :func:`hwprofiles.models.list_models`).

    >>> list_profiles("pcm-*")
    ['pcm-hermes', 'pcm-joshi2020']
    """
    return [name for name in profile_library() if fnmatch.fnmatchcase(name, pattern)]


def load_profile(name_or_path: str | Path | Profile) -> Profile:
    """A validated profile, by library name or by file path.

    Raises:
        UnknownProfileError: no profile has that name (close matches are suggested).
        ProfileError: the file is malformed.
    """
    if isinstance(name_or_path, Profile):
        return name_or_path
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or text.endswith(PROFILE_FILE_SUFFIXES) or os.sep in text
    if looks_like_path:
        return read_profile_file(text)
    library = profile_library()
    source = library.get(text)
    if source is None:
        hint = did_you_mean(text, list(library))
        raise UnknownProfileError(
            f"no profile named '{text}'.{hint} Known profiles: {', '.join(library)}. "
            f"Add directories with {PATH_ENV} or --profiles-dir."
        )
    return read_profile_file(source.path)
