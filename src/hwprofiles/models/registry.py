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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hwprofiles import plugins
from hwprofiles.errors import DuplicateModelError, UnknownModelError
from hwprofiles.models.torchvision_zoo import TORCHVISION_PREFIX, torchvision_model
from hwprofiles.named_registry import Registry, import_owned, import_target

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

HOOK = "hwprofiles_register_models"

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
        """The function that builds the model (imported on first use).

        Raises:
            PluginError: a ``"module:function"`` builder cannot be imported.
        """
        if self._builder is None:
            if isinstance(self.source, str):
                self._builder = import_owned(
                    self.source, owner=self.owner, described=f"the builder '{self.source}' of model '{self.name}'"
                )
            else:
                self._builder = self.source
        return self._builder


def _load(models: Registry[ModelEntry]) -> None:
    """Every plugin's models; a hook that raises fails the load, naming its plugin."""
    plugins.register_from_each(HOOK, ModelRegistrar)


_models: Registry[ModelEntry] = Registry(
    "model",
    loader=_load,
    unknown_error=UnknownModelError,
    duplicate_error=DuplicateModelError,
    hint=f"and any torchvision classification model as '{TORCHVISION_PREFIX}NAME'.",
)
plugins.on_reset(_models.reset)


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
    return _models.register(name, ModelEntry(name=name, owner=owner, source=builder), owner=owner).value


def get_model_entry(name: str) -> ModelEntry:
    """The registered entry of ``name``.

    Raises:
        UnknownModelError: no such model; the message lists valid names and close matches.
    """
    return _models.get(name)


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
        factory = import_target(spec)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UnknownModelError(
            f"model '{spec}': cannot import '{attr}' from module '{module_name}' ({exc}). A model of your own is "
            "named as module:factory, with the module importable (on PYTHONPATH or installed)."
        ) from None
    if not callable(factory):
        raise UnknownModelError(
            f"model '{spec}': '{attr}' is not callable; name a function or class that builds the model"
        )
    params: Mapping[str, inspect.Parameter]
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return factory(**{k: v for k, v in kwargs.items() if takes_all or k in params})


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered models matching an ``fnmatch`` pattern.

    ``torchvision:NAME`` models are not listed; see ``torchvision.models.list_models()``.

    >>> list_models("resnet*")  # doctest: +SKIP
    ['resnet18', 'resnet20', 'resnet32', 'resnet56']
    """
    return _models.names(pattern)


def registered_models() -> dict[str, ModelEntry]:
    """All registered models, by name (a copy)."""
    return {name: entry.value for name, entry in _models.entries().items()}


class ModelRegistrar:
    """What the ``hwprofiles_register_models`` hook receives: it records the owner."""

    def __init__(self, owner: str) -> None:
        self.owner = owner

    def add(self, name: str, builder: Builder | str) -> None:
        """Register ``builder`` (a callable or ``"module:function"``) under ``name``."""
        register_model(name, builder, owner=self.owner)


def reset() -> None:
    """Forget every model; the next use loads them from the plugins again."""
    _models.reset()
