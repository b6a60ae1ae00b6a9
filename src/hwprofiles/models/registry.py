"""The model registry: which architectures ``get_model`` can build, and who owns them.

Models arrive through the ``hwprofiles_register_models`` hook (the built-in zoo
included) the first time the registry is used; the verbs follow timm's model
registry::

    >>> from hwprofiles.models import list_models
    >>> list_models("vgg*")
    ['vgg11', 'vgg11_bn']

Any torchvision classification model is also available, as ``torchvision:NAME``
(not listed, since torchvision has its own ``list_models``). Nothing here imports
torch: builders are named as ``"module:function"`` strings and imported when a
model is built.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hwprofiles.errors import DuplicateModelError, PluginError, UnknownModelError

if TYPE_CHECKING:  # pragma: no cover
    import pluggy
    import torch.nn as nn

TORCHVISION_PREFIX = "torchvision:"

Builder = Callable[..., "nn.Module"]


@dataclass
class ModelEntry:
    """One registered architecture.

    Attributes:
        name: the key ``get_model`` takes (``resnet20``).
        owner: the plugin that registered it.
        source: the builder as registered: a callable or a ``"module:function"`` string.
    """

    name: str
    owner: str
    source: Builder | str = field(repr=False)
    _builder: Builder | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def builder(self) -> Builder:
        """The function that builds the model (imported on first use)."""
        if self._builder is None:
            if isinstance(self.source, str):
                module_name, _, attr = self.source.partition(":")
                try:
                    self._builder = getattr(importlib.import_module(module_name), attr)
                except (ImportError, AttributeError, ValueError) as exc:
                    raise PluginError(
                        f"plugin '{self.owner}': the builder '{self.source}' of model '{self.name}' "
                        f"cannot be imported: {exc}",
                        plugin=self.owner,
                    ) from exc
            else:
                self._builder = self.source
        return self._builder


_models: dict[str, ModelEntry] = {}
_lock = threading.RLock()
# The plugin manager the registry was filled from. A new manager (after
# hwprofiles.plugins.reset_plugin_manager) makes the registry load afresh.
_loaded_for: pluggy.PluginManager | None = None


def _ensure_loaded() -> None:
    global _loaded_for
    from hwprofiles import plugins

    with _lock:
        pm = plugins.get_plugin_manager()
        if _loaded_for is pm:
            return
        _models.clear()
        _loaded_for = pm  # set before the hooks run: a hook may call register_model
        try:
            for _ in plugins.call_each(
                "hwprofiles_register_models", lambda info: {"registry": ModelRegistrar(info.name)}
            ):
                pass
        except BaseException:
            _reset()
            raise


def register_model(name: str, builder: Builder | str, *, owner: str = "user") -> ModelEntry:
    """Register one architecture under ``name``.

    Args:
        name: the key users pass to :func:`get_model`; no ``:`` (that marks a source
            such as ``torchvision:``).
        builder: a callable returning an ``nn.Module``, or a ``"module:function"`` string.
            It should take the keywords ``in_channels``, ``num_classes`` and ``width``.
        owner: who registers it (plugin name), shown in errors.

    Returns:
        The registered :class:`ModelEntry`.

    Raises:
        DuplicateModelError: the name is already registered by another owner or builder.

    >>> register_model("tiny_mlp", "hwprofiles.models.perceptron:mlp", owner="lab")  # doctest: +SKIP
    """
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a model name must be a non-empty string without ':', not {name!r}")
    with _lock:
        _ensure_loaded()
        existing = _models.get(name)
        if existing is not None:
            if existing.owner == owner and existing.source == builder:  # the same call again
                return existing
            raise DuplicateModelError(
                f"model '{name}' is registered twice: by plugin '{existing.owner}' and by "
                f"plugin '{owner}'. Rename one of them, or uninstall or block one of the "
                "plugins (HWPROFILES_DISABLE_PLUGINS=name)."
            )
        entry = ModelEntry(name=name, owner=owner, source=builder)
        _models[name] = entry
        return entry


def get_model_entry(name: str) -> ModelEntry:
    """The registered entry of ``name``.

    Raises:
        UnknownModelError: no such model; the message lists valid names and close matches.
    """
    _ensure_loaded()
    try:
        return _models[name]
    except KeyError:
        raise UnknownModelError(_unknown_message(name, sorted(_models))) from None


def get_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` (or ``torchvision:NAME``).

    Args:
        name: a registered name (see :func:`list_models`), ``torchvision:NAME``, or
            ``module:factory`` for a model of your own (it gets those keyword
            arguments below that its signature accepts).
        **kwargs: passed to the builder; every built-in takes ``in_channels`` (3),
            ``num_classes`` (10) and ``width`` (1.0, a width multiplier).

    Returns:
        A freshly initialised ``nn.Module`` (seed torch first for the same weights).

    Raises:
        UnknownModelError: no such model; the message lists valid names and close matches.

    >>> from hwprofiles.models import get_model
    >>> model = get_model("resnet20", in_channels=1, num_classes=10)  # Fashion-MNIST
    """
    if isinstance(name, str) and name.startswith(TORCHVISION_PREFIX):
        from hwprofiles.models.torchvision_zoo import torchvision_model

        return torchvision_model(name[len(TORCHVISION_PREFIX) :], **kwargs)
    if isinstance(name, str) and ":" in name:
        return _from_factory(name, kwargs)
    return get_model_entry(name).builder(**kwargs)


def _from_factory(spec: str, kwargs: dict[str, Any]) -> nn.Module:
    """Build ``module:factory`` (the user's own model), passing only the keyword
    arguments its signature accepts (``in_channels``, ``num_classes``, ``width``)."""
    import inspect

    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UnknownModelError(
            f"model '{spec}': cannot import '{attr}' from module '{module_name}' ({exc}). A model of your own is "
            "named as module:factory, with the module importable (on PYTHONPATH or installed)."
        ) from None
    if not callable(factory):
        raise UnknownModelError(
            f"model '{spec}': '{attr}' is not callable; name a function or class that builds the model"
        )
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return factory(**{k: v for k, v in kwargs.items() if takes_all or k in params})


create_model = get_model


def _unknown_message(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(name), valid, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"unknown model '{name}'.{hint} Valid models: {', '.join(valid)}; "
        f"and any torchvision classification model as '{TORCHVISION_PREFIX}NAME'."
    )


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching an ``fnmatch`` pattern.

    ``torchvision:NAME`` models are not listed; see ``torchvision.models.list_models()``.

    >>> list_models("resnet*")  # doctest: +SKIP
    ['resnet18', 'resnet20', 'resnet32', 'resnet56']
    """
    _ensure_loaded()
    return sorted(n for n in _models if fnmatch.fnmatchcase(n, pattern))


def registered_models() -> dict[str, ModelEntry]:
    """All registered models, by name (a copy)."""
    _ensure_loaded()
    return dict(_models)


class ModelRegistrar:
    """What the ``hwprofiles_register_models`` hook receives: it records the owner."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def add(self, name: str, builder: Builder | str) -> None:
        """Register ``builder`` (a callable or ``"module:function"``) under ``name``."""
        register_model(name, builder, owner=self.owner)


def _reset() -> None:
    """Forget every model; the next use loads them from the plugins again (for tests)."""
    global _loaded_for
    with _lock:
        _models.clear()
        _loaded_for = None
