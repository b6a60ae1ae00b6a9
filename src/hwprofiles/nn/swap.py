"""One way to swap layers: put twins in place of float layers, and float layers back.

Every converter (:func:`~hwprofiles.to_noisy`, :func:`~hwprofiles.to_clean`,
:func:`~hwprofiles.to_qat`, :func:`~hwprofiles.from_qat`, :func:`~hwprofiles.nn.qat.bake_qat`)
walks the model with :func:`swap_modules` and builds its twins with :class:`TwinMixin`,
as torch.ao's QAT swaps a module for its fake-quantized version: the twin subclasses
the float layer and shares its parameters, buffers and hooks.

A module registered under several names (one ``nn.ReLU`` used at two places) is one
object, so it becomes one twin reachable under every one of those names. It is known by
its first name in module order, the name ``named_modules()`` gives it: that is the name
the converter sees (and ``exclude=`` matches), and the name its noise site carries.

    >>> import torch.nn as nn
    >>> relu = nn.ReLU()
    >>> model = nn.Sequential(nn.Linear(2, 2), relu, nn.Linear(2, 2), relu)
    >>> model = swap_modules(model, lambda name, m: nn.ReLU6() if type(m) is nn.ReLU else None)
    >>> type(model[1]).__name__, model[1] is model[3]
    ('ReLU6', True)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import ClassVar, TypeVar

import torch
import torch.nn as nn

Convert = Callable[[str, nn.Module], nn.Module | None]
"""``convert(name, module)``: the module to put in its place, ``module`` itself, or None."""

_Twin = TypeVar("_Twin", bound="TwinMixin")


def excluded(name: str, exclude: Iterable[str]) -> bool:
    """Whether the module ``name`` is one of ``exclude`` or inside one.

    >>> excluded("block.0", ["block"]), excluded("block2", ["block"])
    (True, False)
    """
    return any(name == e or name.startswith(e + ".") for e in exclude)


def _inside(name: str, settled: set[str]) -> bool:
    """Whether ``name`` lies strictly inside a module named in ``settled``."""
    if not name:
        return False
    if "" in settled:
        return True
    parts = name.split(".")
    return any(".".join(parts[:i]) in settled for i in range(1, len(parts)))


def swap_modules(model: nn.Module, convert: Convert) -> nn.Module:
    """Replace, in place, the modules of ``model`` for which ``convert`` gives another.

    Modules are visited parents first; ``convert(name, module)`` returns:

    - a new module: it takes ``module``'s place under every name ``module`` is
      registered under, and ``module``'s children are not visited (they are the new
      module's now);
    - ``module`` itself: it stays, and its children are not visited (it is a twin already);
    - ``None``: it stays, and its children are visited.

    A module registered under several names is converted once, under its first name.

    Args:
        model: the model; the root itself is visited too, under the name ``""``.
        convert: what to put in place of each module.

    Returns:
        ``model``, or what replaced it when ``convert`` replaced the root.
    """
    names: dict[int, list[str]] = {}
    modules: dict[int, nn.Module] = {}
    # Names are taken before anything is replaced: what replaces a module is not visited.
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), []).append(name)
        modules.setdefault(id(module), module)
    settled: set[str] = set()
    root = model
    for key, module_names in names.items():
        if _inside(module_names[0], settled):
            continue
        module = modules[key]
        new = convert(module_names[0], module)
        if new is None:
            continue
        places = [n for n in module_names if not _inside(n, settled)]
        settled.update(places)
        if new is module:
            continue
        new.train(module.training)  # parts the new module made (its analog products) take the mode too
        for name in places:
            if not name:
                root = new
                continue
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, new)
    return root


def model_device(model: nn.Module) -> torch.device | None:
    """The device of the first parameter or buffer of ``model`` (None when it has neither)."""
    for t in [*model.parameters(), *model.buffers()]:
        return t.device
    return None


class TwinMixin(nn.Module):
    """What every twin shares: it is made from its float layer by sharing that layer's
    state, and turns back into it.

    A twin subclasses its float layer (``class NoisyLinear(NoisyLayerMixin, nn.Linear)``),
    which is taken as its float type. :meth:`share` makes a twin holding the float
    layer's parameters, buffers and hooks (the same tensors and dicts) with parameter
    and child dicts of its own, so what the twin adds never lands in the float layer;
    :meth:`to_float` drops what the twin added and gives the float layer back.
    """

    _float_type: ClassVar[type[nn.Module]]
    _twin_attrs: ClassVar[tuple[str, ...]] = ()
    """Instance attributes the twin adds to the float layer's (dropped by :meth:`to_float`)."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "_float_type" not in vars(cls):
            # The first class of the MRO that is not a twin: the float type is written once, in the bases.
            cls._float_type = next(c for c in cls.__mro__ if issubclass(c, nn.Module) and not issubclass(c, TwinMixin))

    @classmethod
    def share(cls: type[_Twin], module: nn.Module) -> _Twin:
        """A twin of ``module`` holding its parameters, buffers and hooks (nothing added yet)."""
        twin = cls.__new__(cls)
        state = module.__dict__.copy()  # shares parameters, buffers and hook dicts
        for own in ("_parameters", "_modules"):
            state[own] = type(state[own])(state[own])
        state["_float_cls"] = type(module)  # e.g. attention's NonDynamicallyQuantizableLinear
        twin.__dict__ = state
        return twin

    def twin_parts(self) -> Collection[str]:
        """Names of the parameters and children the twin added (dropped by :meth:`to_float`)."""
        return ()

    def to_float(self) -> nn.Module:
        """The float layer back, with the same parameters, buffers and hooks; twins inside
        it become float too."""
        base = self.__dict__.get("_float_cls", self._float_type)
        module = base.__new__(base)
        added = set(self.twin_parts())
        state = {k: v for k, v in self.__dict__.items() if k != "_float_cls" and k not in self._twin_attrs}
        params, children = self._parameters, self._modules
        state["_parameters"] = type(params)((k, v) for k, v in params.items() if k not in added)
        state["_modules"] = type(children)(
            (k, c.to_float() if isinstance(c, TwinMixin) else c) for k, c in children.items() if k not in added
        )
        module.__dict__ = state
        return module


__all__ = ["Convert", "TwinMixin", "excluded", "model_device", "swap_modules"]
