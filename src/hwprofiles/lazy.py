"""Attributes of a package imported on first access (PEP 562), so that importing the
package does not import torch.

A package lists ``name -> module`` and delegates its ``__getattr__``::

    _LAZY = {"to_noisy": "hwprofiles.nn.convert"}

    def __getattr__(name: str) -> Any:
        return lazy_attribute(__name__, _LAZY, globals(), name)
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, MutableMapping
from typing import Any


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
