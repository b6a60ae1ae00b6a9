"""The noise-model registry: which ``kind`` names exist, and what implements them.

Kinds arrive through the ``hwprofiles_register_noise_models`` hook (built-ins
included) the first time the registry is used. The verbs follow timm's model
registry::

    >>> import hwprofiles
    >>> hwprofiles.list_noise_models("pcm_*")
    ['pcm_drift', 'pcm_programming', 'pcm_read_1f']
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hwprofiles.errors import DuplicateNoiseModelError, PluginError, UnknownNoiseModelError

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.entries.base import NoiseEntry
    from hwprofiles.noise.base import NoiseKind


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
    _implementation: type[NoiseKind] | str = field(repr=False)

    @property
    def implementation(self) -> type[NoiseKind]:
        """The :class:`~hwprofiles.noise.NoiseKind` subclass (imported on first use)."""
        impl = self._implementation
        if isinstance(impl, str):
            module_name, _, attr = impl.partition(":")
            try:
                impl = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise PluginError(
                    f"plugin '{self.owner}': the implementation '{self._implementation}' of "
                    f"noise kind '{self.kind}' cannot be imported: {exc}",
                    plugin=self.owner,
                ) from exc
            self._implementation = impl
        return impl


_noise_models: dict[str, NoiseModel] = {}


def _kind_of(entry_model: type) -> str:
    from hwprofiles.entries.base import NoiseEntry

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
    entry_model: type[NoiseEntry], implementation: type[NoiseKind] | str, *, owner: str = "user"
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
    existing = _noise_models.get(kind)
    if existing is not None and existing.entry_model is not entry_model:
        raise DuplicateNoiseModelError(
            f"noise kind '{kind}' is registered twice: by plugin '{existing.owner}' and by "
            f"plugin '{owner}'. Uninstall or block one of them "
            "(HWPROFILES_DISABLE_PLUGINS=name)."
        )
    model = NoiseModel(kind=kind, entry_model=entry_model, owner=owner, _implementation=implementation)
    _noise_models[kind] = model
    _profile_model_cache.clear()
    return model


def _ensure_loaded() -> None:
    from hwprofiles.plugins import get_plugin_manager

    get_plugin_manager()


def get_noise_model(kind: str) -> NoiseModel:
    """The registered noise model of ``kind``.

    Raises:
        UnknownNoiseModelError: no such kind; the message lists valid kinds and close matches.
    """
    _ensure_loaded()
    try:
        return _noise_models[kind]
    except KeyError:
        raise UnknownNoiseModelError(unknown_kind_message(kind)) from None


def unknown_kind_message(kind: str) -> str:
    from hwprofiles.plugins import broken_plugins
    from hwprofiles.untrusted import printable

    kind = printable(str(kind))
    broken = broken_plugins()
    for info in broken:
        if kind in info.kinds:
            return (
                f"noise kind '{kind}' comes from plugin '{info.name}' (distribution '{info.distribution}'), "
                f"which is not loaded: {info.error}. Fix or reinstall that plugin; `hwprofiles plugins` shows it."
            )
    valid = sorted(_noise_models)
    close = difflib.get_close_matches(kind, valid, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    message = f"unknown noise kind '{kind}'.{hint} Valid kinds: {', '.join(valid)}."
    if broken:
        names = ", ".join(f"'{info.name}'" for info in broken)
        message += f" Plugins that failed to load, which may bring it: {names} (`hwprofiles plugins` shows why)."
    return message


def list_noise_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered kinds matching an ``fnmatch`` pattern."""
    _ensure_loaded()
    return sorted(k for k in _noise_models if fnmatch.fnmatchcase(k, pattern))


def noise_models() -> dict[str, NoiseModel]:
    """All registered kinds, by name (a copy)."""
    _ensure_loaded()
    return dict(_noise_models)


class NoiseModelRegistrar:
    """What the ``hwprofiles_register_noise_models`` hook receives: it records the owner."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.kinds: list[str] = []  # every kind it was asked to add, registered or refused

    def add(self, entry_model: type[NoiseEntry], implementation: type[NoiseKind] | str) -> None:
        """Register ``entry_model`` (keyed by its ``kind``) with its implementation."""
        self.kinds.append(_kind_of(entry_model))
        register_noise_model(entry_model, implementation, owner=self.owner)


def forget_owner(owner: str) -> list[str]:
    """Unregister every kind ``owner`` registered (a plugin left out); returns their names."""
    gone = sorted(k for k, m in _noise_models.items() if m.owner == owner)
    for kind in gone:
        del _noise_models[kind]
    if gone:
        _profile_model_cache.clear()
    return gone


# profiles.profile_model() caches the discriminated union built from the kinds above;
# registering a kind invalidates it.
_profile_model_cache: dict[str, Any] = {}


def _reset() -> None:
    """Forget every kind (tests use it to reload plugins)."""
    _noise_models.clear()
    _profile_model_cache.clear()
