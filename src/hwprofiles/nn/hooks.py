"""The forward hooks a converted model carries besides its twins.

:func:`~hwprofiles.to_noisy` puts on the model a check that refuses non-finite inputs,
switches off torch's fused transformer path (it would bypass the twins), and, under
``placement: every_layer``, adds output noise after the network input and after every
normalisation, activation and pooling layer, as the seed study places it. Hooks are
found again by their type, so they are swapped whenever the profile changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
import torch.nn as nn

from hwprofiles.nn.calibration import FiniteInputCheck
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.nn.site import NoiseSite
from hwprofiles.nn.swap import excluded
from hwprofiles.profiles import Profile

INPUT = "<input>"
"""The name of the network input's noise site (for ``exclude=``)."""

EVERY_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Mish,
    nn.Softplus,
    nn.PReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
)
"""Layers whose outputs carry noise under ``placement: every_layer`` (besides the twins)."""

_NESTED = "_hwprofiles_nested"  # a TransformerEncoder's own use_nested_tensor, restored on removal


class OutputNoiseHook:
    """A forward hook adding a site's output noise to a layer's output."""

    def __init__(self, site: NoiseSite) -> None:
        self.site = site

    def __call__(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if isinstance(output, torch.Tensor):
            return self.site.apply_outputs(output, module.training)
        return None


class InputNoiseHook:
    """A forward pre-hook adding a site's output noise to the network input."""

    def __init__(self, site: NoiseSite) -> None:
        self.site = site

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        if args and isinstance(args[0], torch.Tensor):
            return (self.site.apply_outputs(args[0], module.training), *args[1:])
        return None


class FusedPathOff:
    """A forward pre-hook that does nothing: torch's fused inference path of
    ``nn.TransformerEncoderLayer`` reads the float weights directly (it would bypass the
    twins), and torch takes it only when no module of the layer holds a hook."""

    def __call__(self, module: nn.Module, args: tuple) -> None:
        return None


MODEL_HOOKS = (InputNoiseHook, OutputNoiseHook, FiniteInputCheck, FusedPathOff)
"""The types of every hook :func:`add_model_hooks` puts on a model."""


def remove_model_hooks(model: nn.Module) -> None:
    """Take every hook of :data:`MODEL_HOOKS` off ``model`` and its modules."""
    # Found by type rather than through handles: handles would still point at the
    # original model after a deep copy.
    for module in model.modules():
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key in [k for k, h in hooks.items() if isinstance(h, MODEL_HOOKS)]:
                del hooks[key]
        if isinstance(module, nn.TransformerEncoder) and _NESTED in module.__dict__:
            module.use_nested_tensor = module.__dict__.pop(_NESTED)


def add_model_hooks(model: nn.Module, profile: Profile, exclude: Iterable[str]) -> None:
    """Put the hooks of a model converted under ``profile`` on ``model`` (replacing any it had)."""
    remove_model_hooks(model)
    model.register_forward_pre_hook(FiniteInputCheck())
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoderLayer):
            module.register_forward_pre_hook(FusedPathOff())
        elif isinstance(module, nn.TransformerEncoder) and hasattr(module, "use_nested_tensor"):
            # Nested-tensor inputs would reach the twins, which compute on padded tensors.
            module.__dict__[_NESTED] = module.use_nested_tensor
            module.use_nested_tensor = False
    if profile.placement != "every_layer":
        return
    exclude = frozenset(exclude)
    if INPUT not in exclude:
        model.register_forward_pre_hook(InputNoiseHook(NoiseSite(profile, INPUT, outputs_only=True)))
    for name, module in model.named_modules():
        # isinstance, not the exact type: a quantized ReLU's output is still an activation
        if name and isinstance(module, EVERY_LAYER_TYPES) and not excluded(name, exclude):
            module.register_forward_hook(OutputNoiseHook(NoiseSite(profile, name, outputs_only=True)))


def noise_sites(model: nn.Module) -> Iterator[NoiseSite]:
    """Every noise site of a converted model, in a fixed order (input first, then module order)."""
    for hook in model._forward_pre_hooks.values():
        if isinstance(hook, InputNoiseHook):
            yield hook.site
    for module in model.modules():
        if isinstance(module, AnalogMVM):
            yield module.site
        for hook in module._forward_hooks.values():
            if isinstance(hook, OutputNoiseHook):
                yield hook.site


__all__ = [
    "EVERY_LAYER_TYPES",
    "INPUT",
    "MODEL_HOOKS",
    "FusedPathOff",
    "InputNoiseHook",
    "OutputNoiseHook",
    "add_model_hooks",
    "noise_sites",
    "remove_model_hooks",
]
