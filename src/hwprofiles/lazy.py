"""Attributes of a package imported on first access (PEP 562), so that importing the
package does not import torch.

A package lists ``name -> module`` and takes its ``__getattr__`` and ``__dir__`` from here::

    _LAZY = {"to_noisy": "hwprofiles.nn.convert"}
    __all__ = ["load_profile", *_LAZY]
    __getattr__, __dir__ = lazy_module(__name__, _LAZY, globals())
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from types import ModuleType
from typing import Any

optional_modules: dict[str, ModuleType | None] = {}  # what optional_module found (None: not importable)


def optional_module(name: str) -> ModuleType | None:
    """The module ``name``, imported on first use, or None where it cannot be imported: an
    optional compiled backend (the numba kernels) that has a slower fallback beside it. A test
    sets its entry in :data:`optional_modules` to None to run the fallback."""
    if name not in optional_modules:
        try:
            optional_modules[name] = importlib.import_module(name)
        except ImportError:
            optional_modules[name] = None
    return optional_modules[name]


def lazy_attribute(package: str, lazy: Mapping[str, str], namespace: MutableMapping[str, Any], name: str) -> Any:
    """The attribute ``name`` of ``package``, imported from the module ``lazy`` names
    for it and kept in the package's ``namespace`` so the next access is direct.

    Raises:
        AttributeError: ``lazy`` does not name it.

    >>> lazy_attribute("pkg", {"join": "os.path"}, {}, "join").__name__
    'join'
    """
    module = lazy.get(name)
    if module is None:
        raise AttributeError(f"module '{package}' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value


def lazy_module(
    package: str, lazy: Mapping[str, str], namespace: MutableMapping[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` (through :func:`lazy_attribute`) and ``__dir__`` (its
    ``__all__``, sorted, as read when ``dir()`` is called)."""

    def __getattr__(name: str) -> Any:
        return lazy_attribute(package, lazy, namespace, name)

    def __dir__() -> list[str]:
        return sorted(namespace["__all__"])

    return __getattr__, __dir__
