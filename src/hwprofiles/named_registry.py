"""One generic registry: names mapped to things that plugins (or users) register.

Noise kinds, models and training methods are each a :class:`Registry`; they differ in
what they hold and in how they are filled, not in how they are read. The verbs follow
timm's model registry (register / get / list by pattern), errors name close matches,
and a target may be given as a ``"module:attr"`` string that is imported on first use,
so that registering costs nothing (the command line starts without importing torch).

    >>> shapes = Registry("shape")
    >>> _ = shapes.register("square", "builtins:len", owner="demo")
    >>> shapes.get("square")("abcd")
    4
    >>> shapes.names("sq*")
    ['square']
    >>> shapes.get("squar")
    Traceback (most recent call last):
    ...
    hwprofiles.errors.UnknownNameError: unknown shape 'squar'. Did you mean 'square'? Valid shapes: square.

Nothing here imports the rest of the package but :mod:`hwprofiles.errors` (and, for
messages, :mod:`hwprofiles.untrusted`).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hwprofiles.errors import DuplicateNameError, PluginError, UnknownNameError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str], shown: Callable[[str], str] = repr) -> str:
    """`` Did you mean 'a', 'b'?`` for the close matches of ``name`` among ``choices``
    (each written by ``shown``), or "" when there are none.

    >>> did_you_mean("squar", ["square", "circle"])
    " Did you mean 'square'?"
    """
    close = difflib.get_close_matches(name, choices, n=3)
    return f" Did you mean {', '.join(shown(c) for c in close)}?" if close else ""


def import_target(spec: str) -> Any:
    """The object a ``"module:attr"`` string names (``attr`` may be dotted).

    Raises:
        ImportError, AttributeError, ValueError: as importing or looking up raises them.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"'{spec}' is not of the form module:attr")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def import_owned(spec: str, *, owner: str, described: str) -> Any:
    """The object a ``"module:attr"`` string that ``owner`` registered names.

    Args:
        spec: the string.
        owner: the plugin (or user) that registered it.
        described: what it is, for the message (``the builder 'x:y' of model 'net'``).

    Raises:
        PluginError: it cannot be imported; the message names ``owner``.
    """
    try:
        return import_target(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        raise PluginError(f"plugin '{owner}': {described} cannot be imported: {exc}", plugin=owner) from exc


@dataclass
class Entry(Generic[T]):
    """One registered name.

    Attributes:
        name: the key it is registered under.
        owner: who registered it (a plugin's name, or ``user``), shown in listings and errors.
        source: the target as registered: the object, or a ``"module:attr"`` string.
        what: what the registry holds (``noise kind``), for messages.
    """

    name: str
    owner: str
    source: Any = field(repr=False)
    what: str = field(default="entry", repr=False)
    _value: Any = field(default=None, init=False, repr=False, compare=False)
    _resolved: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def value(self) -> T:
        """The registered object (a ``"module:attr"`` target is imported on first use).

        Raises:
            PluginError: the target cannot be imported; the message names its owner.
        """
        if not self._resolved:
            if isinstance(self.source, str):
                described = f"'{self.source}', registered as {self.what} '{self.name}',"
                self._value = import_owned(self.source, owner=self.owner, described=described)
            else:
                self._value = self.source
            self._resolved = True
        return self._value


class Registry(Generic[T]):
    """Names mapped to registered things of one sort.

    Args:
        what: what it holds, singular (``"model"``), for messages.
        loader: fills the registry the first time it is read (and again after
            :meth:`reset`), typically by calling a plugin hook; if it raises, whatever it
            registered is forgotten, so a half-loaded registry is never seen.
        unknown_error: the exception raised for a name that is not registered.
        duplicate_error: the exception raised when a second owner takes a name.
        hint: appended to the "unknown name" message (where else names may come from).
    """

    def __init__(
        self,
        what: str,
        *,
        loader: Callable[[Registry[T]], None] | None = None,
        unknown_error: type[UnknownNameError] = UnknownNameError,
        duplicate_error: type[DuplicateNameError] = DuplicateNameError,
        hint: str = "",
    ) -> None:
        self.what = what
        self.unknown_error = unknown_error
        self.duplicate_error = duplicate_error
        self.hint = hint
        self._loader = loader
        self._entries: dict[str, Entry[T]] = {}
        self._loaded = loader is None
        self._loading = False
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []

    # -- filling -----------------------------------------------------------------------

    def register(self, name: str, target: T | str, *, owner: str = "user") -> Entry[T]:
        """Register ``target`` (the object, or ``"module:attr"``) under ``name``.

        Registering the same target under the same name again is a no-op.

        Raises:
            DuplicateNameError: (or the registry's subclass) another owner or target
                already has the name.
        """
        with self._lock:
            self.ensure_loaded()
            existing = self._entries.get(name)
            if existing is not None:
                if existing.source is target or existing.source == target:
                    return existing
                raise self.duplicate_error(
                    f"{self.what} '{name}' is registered twice: by plugin '{existing.owner}' and by "
                    f"plugin '{owner}'. Uninstall or block one of them (HWPROFILES_DISABLE_PLUGINS=name)."
                )
            entry: Entry[T] = Entry(name=name, owner=owner, source=target, what=self.what)
            self._entries[name] = entry
        self._changed()
        return entry

    def unregister(self, name: str) -> None:
        """Forget ``name`` (nothing happens if it is not registered)."""
        with self._lock:
            gone = self._entries.pop(name, None)
        if gone is not None:
            self._changed()

    def forget_owner(self, owner: str) -> list[str]:
        """Forget every name ``owner`` registered (a plugin left out); returns them, sorted."""
        with self._lock:
            gone = sorted(n for n, e in self._entries.items() if e.owner == owner)
            for name in gone:
                del self._entries[name]
        if gone:
            self._changed()
        return gone

    def reset(self) -> None:
        """Forget everything; a registry with a loader fills itself again on next use."""
        with self._lock:
            self._entries.clear()
            self._loaded = self._loader is None
        self._changed()

    def ensure_loaded(self) -> None:
        """Run the loader if it has not run since the last :meth:`reset`."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:  # a hook registering while the loader runs
                return
            self._loading = True
            try:
                assert self._loader is not None
                self._loader(self)
            except BaseException:
                self._entries.clear()
                self._changed()
                raise
            else:
                self._loaded = True
            finally:
                self._loading = False

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever a name is added or removed (to drop caches built
        from the registry's contents)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    # -- reading -----------------------------------------------------------------------

    def entry(self, name: str) -> Entry[T]:
        """The :class:`Entry` of ``name``.

        Raises:
            UnknownNameError: (or the registry's subclass) with close matches and valid names.
        """
        self.ensure_loaded()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.unknown_error(self.unknown_message(name)) from None

    def get(self, name: str) -> T:
        """The object registered as ``name`` (imported on first use)."""
        return self.entry(name).value

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching an ``fnmatch`` pattern."""
        self.ensure_loaded()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def entries(self) -> dict[str, Entry[T]]:
        """Every entry, by name (a copy)."""
        self.ensure_loaded()
        return dict(self._entries)

    def unknown_message(self, name: object) -> str:
        """The message for a name that is not registered: close matches, then valid names."""
        from hwprofiles.untrusted import printable  # a name may come from a hostile file

        name = printable(str(name))
        valid = sorted(self._entries)
        hint = did_you_mean(name, valid)
        listing = ", ".join(valid) if valid else "none"
        message = f"unknown {self.what} '{name}'.{hint} Valid {self.what}s: {listing}"
        return f"{message}; {self.hint}" if self.hint else f"{message}."

    def __contains__(self, name: object) -> bool:
        self.ensure_loaded()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.ensure_loaded()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self._entries)} names)"
