"""The base of every noisy twin: a float layer whose products run on the chip.

A noisy twin subclasses its float layer (through :class:`~hwprofiles.nn.swap.TwinMixin`,
as QAT twins do), shares its parameters, and holds one
:class:`~hwprofiles.nn.mvm.AnalogMVM` child per product: the noise lives there, so
``to_float`` only has to drop those children.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch.nn as nn

from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.nn.site import NoiseSite
from hwprofiles.nn.swap import TwinMixin

_Twin = TypeVar("_Twin", bound="NoisyTwin")


class NoisyTwin(TwinMixin):
    """What every noisy twin shares: made from its float layer (sharing parameters,
    buffers and hooks) and turned back into it; its :class:`AnalogMVM` children hold the noise.

    A subclass defines ``_init_noise``, which adds the products.
    """

    @classmethod
    def from_float(cls: type[_Twin], module: nn.Module, site: NoiseSite, **options: Any) -> _Twin:
        """The twin of ``module``, sharing its parameters, buffers and hooks.

        Args:
            module: the float layer.
            site: where the layer's noise acts (its profile and qualified name).
            options: twin-specific switches (``analog_attention`` for attention).
        """
        twin = cls.share(module)
        twin._init_noise(site, **options)
        return twin

    @classmethod
    def unsupported(cls, module: nn.Module) -> str | None:
        """Why ``module`` cannot have this twin (None when it can)."""
        return None

    @classmethod
    def inner_twins(cls, module: nn.Module) -> list[tuple[str, type[nn.Module], type[nn.Module]]]:
        """Layers inside ``module`` this twin converts too: (relative name, float type, twin type)."""
        return []

    def _init_noise(self, site: NoiseSite, **options: Any) -> None:
        raise NotImplementedError

    def twin_parts(self) -> list[str]:
        """The analog products this twin added (its children of type :class:`AnalogMVM`)."""
        return [name for name, child in self._modules.items() if isinstance(child, AnalogMVM)]

    def analog_products(self) -> list[AnalogMVM]:
        """The analog products of this twin (its own, and those of twins inside it)."""
        return [m for m in self.modules() if isinstance(m, AnalogMVM)]

    def _acts(self) -> bool:
        return any(m.acts() for m in self.analog_products())


__all__ = ["NoisyTwin"]
