"""Every hook a hwprofiles plugin can implement, and the markers that declare them.

A plugin is a module (or object) with functions marked ``@hwprofiles.hookimpl``,
declared in the ``hwprofiles`` entry-point group of its distribution::

    [project.entry-points.hwprofiles]
    my_device = "my_package.plugin"

The built-in noise models, profiles and model zoo come through these same hooks.

This module imports nothing of hwprofiles, so that every plugin, the built-in one
included, can import the markers from it without an import cycle (tox keeps its
markers beside its hook specs for the same reason).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pluggy

PROJECT = "hwprofiles"
"""The name of the hook markers, the plugin manager and the entry-point group."""

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification (this module's functions); plugins do not need it."""
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a plugin's function as the implementation of the hook of the same name
(``@hwprofiles.hookimpl``); ``hookimpl(trylast=True)`` and the other pluggy options work."""


class NoiseModelRegistry(Protocol):
    """What ``hwprofiles_register_noise_models`` receives (a
    :class:`hwprofiles.registry.NoiseModelRegistrar`)."""

    def add(self, entry_model: type, implementation: type | str, /) -> None:
        """Register ``entry_model`` (keyed by its ``kind``) with its implementation."""


class ModelRegistry(Protocol):
    """What ``hwprofiles_register_models`` receives (a
    :class:`hwprofiles.models.registry.ModelRegistrar`)."""

    def add(self, name: str, builder: Callable[..., Any] | str, /) -> None:
        """Register ``builder`` (a callable or ``"module:function"``) under ``name``."""


@hookspec
def hwprofiles_register_noise_models(registry: NoiseModelRegistry) -> None:
    """Register noise-model kinds.

    Call ``registry.add(EntryModel, implementation)`` once per kind. ``EntryModel``
    is a :class:`hwprofiles.NoiseEntry` subclass whose ``kind`` field is a
    ``Literal`` with a default (the key written in profile files); the
    implementation is a :class:`hwprofiles.noise.NoiseKind` subclass, or a
    ``"module:Class"`` string so that commands which touch no tensors never
    import torch.

    :param registry: the registrar that records which plugin owns each kind.
    """


@hookspec
def hwprofiles_profile_paths() -> list[str | Path] | None:
    """Contribute profile files or directories (searched for ``*.yaml``/``*.yml``).

    :return: paths to profile files or directories holding them (``None``: none).
    """


@hookspec
def hwprofiles_register_models(registry: ModelRegistry) -> None:
    """Register model architectures for :func:`hwprofiles.models.get_model`.

    Call ``registry.add(name, builder)`` once per architecture. The builder returns
    a ``torch.nn.Module`` and takes the keywords ``in_channels``, ``num_classes`` and
    ``width`` (a width multiplier); give it as a callable, or as a
    ``"module:function"`` string so that loading plugins never imports torch.

    :param registry: the registrar that records which plugin owns each model.
    """


@hookspec
def hwprofiles_register_training_methods(registry: Any) -> None:
    """Register training methods for :class:`hwprofiles.train.TrainConfig` (``--method``).

    Call ``registry.add(name, method)`` once per method. The method is a
    :class:`hwprofiles.train.TrainingMethod` (it says how the model is prepared, whether
    and how it trains under noise, and how its checkpoints are read back), or a
    ``"module:attr"`` string naming one, so that loading plugins never imports torch.

    :param registry: a :class:`hwprofiles.train.TrainingMethodRegistrar`, which records
        which plugin owns each method.
    """


@hookspec(firstresult=True)
def hwprofiles_swap_layer(module: Any, profile: Any, name: str) -> Any:
    """Supply the noisy twin of a layer, overriding the built-in swap.

    Called for every module of a model being converted by
    :func:`hwprofiles.to_noisy`; the first non-``None`` result wins. Return
    ``None`` to leave the module to the built-in rules.

    :param module: the float module (an ``torch.nn.Module``).
    :param profile: the :class:`hwprofiles.Profile` the model is converted to.
    :param name: the module's qualified name in the model (``layer1.0.conv1``).
    :return: a module to put in its place, or ``None``.
    """
