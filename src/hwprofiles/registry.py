"""The noise-model registry: which ``kind`` names exist, and what implements them.

Kinds arrive through the ``hwprofiles_register_noise_models`` hook (built-ins
included) as soon as plugins are used. A plugin whose hook raises, or registers
something unusable, is left out whole: the kinds it registered are taken back. The
verbs follow timm's model registry::

    >>> import hwprofiles
    >>> hwprofiles.list_noise_models("pcm_*")
    ['pcm_drift', 'pcm_programming', 'pcm_read_1f']
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hwprofiles import plugins
from hwprofiles.entries.base import NoiseEntry
from hwprofiles.errors import DuplicateNoiseModelError, PluginHookError, UnknownNoiseModelError
from hwprofiles.named_registry import Registry, import_owned
from hwprofiles.untrusted import printable

HOOK = "hwprofiles_register_noise_models"


@dataclass
class NoiseModel:
    """One registered kind.

    Attributes:
        kind: the key profile files use (``kind: pcm_programming``).
        entry_model: the pydantic model that validates one profile entry.
        owner: the plugin that registered it.
    """

    kind: str
    entry_model: type[NoiseEntry]
    owner: str
    # A NoiseKind subclass, or "module:Class" until first used (noise/ needs torch).
    _implementation: type[Any] | str = field(repr=False)

    @property
    def implementation(self) -> type[Any]:
        """The :class:`~hwprofiles.noise.NoiseKind` subclass (imported on first use).

        Raises:
            PluginError: a ``"module:Class"`` implementation cannot be imported.
        """
        implementation = self._implementation
        if isinstance(implementation, str):
            implementation = import_owned(
                implementation,
                owner=self.owner,
                described=f"the implementation '{implementation}' of noise kind '{self.kind}'",
            )
            self._implementation = implementation
        return implementation


def unknown_kind_message(kind: str) -> str:
    """Why ``kind`` is unknown: the plugin left out that brings it, or the valid kinds
    and close matches (and the plugins left out, which might bring it)."""
    kind = printable(str(kind))
    broken = plugins.broken_plugins()
    for info in broken:
        if kind in info.kinds:
            return (
                f"noise kind '{kind}' comes from plugin '{info.name}' (distribution '{info.distribution}'), "
                f"which is not loaded: {info.error}. Fix or reinstall that plugin; `hwprofiles plugins` shows it."
            )
    valid = _kinds.names()
    close = difflib.get_close_matches(kind, valid, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    message = f"unknown noise kind '{kind}'.{hint} Valid kinds: {', '.join(valid)}."
    if broken:
        names = ", ".join(f"'{info.name}'" for info in broken)
        message += f" Plugins that failed to load, which may bring it: {names} (`hwprofiles plugins` shows why)."
    return message


class _NoiseKinds(Registry[NoiseModel]):
    def unknown_message(self, name: object) -> str:
        return unknown_kind_message(str(name))


def _load(kinds: Registry[NoiseModel]) -> None:
    """Every plugin's kinds; a plugin whose hook fails is left out with its kinds."""
    for impl in plugins.implementations(HOOK):
        registrar = NoiseModelRegistrar(impl.info.name)
        try:
            impl(registry=registrar)
        except PluginHookError as exc:
            kinds.forget_owner(impl.info.name)
            plugins.leave_out(impl.info, exc.reason, exc.__cause__, kinds=registrar.kinds)


_kinds = _NoiseKinds(
    "noise kind", loader=_load, unknown_error=UnknownNoiseModelError, duplicate_error=DuplicateNoiseModelError
)
plugins.on_load(_kinds.ensure_loaded)  # which plugins are usable depends on their kinds
plugins.on_reset(_kinds.reset)


def _kind_of(entry_model: type) -> str:
    if not (isinstance(entry_model, type) and issubclass(entry_model, NoiseEntry)):
        raise TypeError(f"{entry_model!r} is not a hwprofiles.NoiseEntry subclass")
    kind = entry_model.model_fields["kind"].default
    if not isinstance(kind, str) or not kind:
        raise TypeError(
            f"{entry_model.__name__}.kind needs a Literal type and a default, "
            "e.g. kind: Literal['my_noise'] = 'my_noise'"
        )
    return kind


def register_noise_model(
    entry_model: type[NoiseEntry], implementation: type[Any] | str, *, owner: str = "user"
) -> NoiseModel:
    """Register one noise-model kind.

    Args:
        entry_model: the pydantic model of a profile entry; its ``kind`` default is the key.
        implementation: a ``NoiseKind`` subclass or a ``"module:Class"`` string.
        owner: who registers it (plugin name), shown in listings and errors.

    Returns:
        The registered :class:`NoiseModel`.

    Raises:
        DuplicateNoiseModelError: another owner already registered this kind.
    """
    kind = _kind_of(entry_model)
    model = NoiseModel(kind=kind, entry_model=entry_model, owner=owner, _implementation=implementation)
    return _kinds.register(kind, model, owner=owner).value


def get_noise_model(kind: str) -> NoiseModel:
    """The registered noise model of ``kind``.

    Raises:
        UnknownNoiseModelError: no such kind; the message lists valid kinds and close matches.
    """
    return _kinds.get(kind)


def list_noise_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered kinds matching an ``fnmatch`` pattern."""
    return _kinds.names(pattern)


def noise_models() -> dict[str, NoiseModel]:
    """All registered kinds, by name (a copy)."""
    return {name: entry.value for name, entry in _kinds.entries().items()}


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener()`` whenever a kind is registered or forgotten (to drop what was
    built from the registered kinds, such as the profile schema)."""
    _kinds.on_change(listener)


def forget_owner(owner: str) -> list[str]:
    """Unregister every kind ``owner`` registered; returns their names."""
    return _kinds.forget_owner(owner)


def reset() -> None:
    """Forget every kind; the next use registers the plugins' kinds again."""
    _kinds.reset()


class NoiseModelRegistrar:
    """What the ``hwprofiles_register_noise_models`` hook receives: it records the owner."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.kinds: list[str] = []  # every kind it was asked to add, registered or refused

    def add(self, entry_model: type[NoiseEntry], implementation: type[Any] | str) -> None:
        """Register ``entry_model`` (keyed by its ``kind``) with its implementation."""
        self.kinds.append(_kind_of(entry_model))
        register_noise_model(entry_model, implementation, owner=self.owner)
