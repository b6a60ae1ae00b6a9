"""Any torchvision classification model, as ``torchvision:NAME``, adapted to the image channels.

torch and torchvision are imported when a model is built, so that the model registry
can route ``torchvision:`` names here without importing them. torchvision is optional
(the ``vision`` extra); without it these models say how to install it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from hwprofiles.errors import HwProfilesError, UnknownModelError
from hwprofiles.named_registry import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

TORCHVISION_PREFIX = "torchvision:"
"""How :func:`hwprofiles.models.get_model` names these models (``torchvision:resnet18``)."""


def torchvision_model(
    name: str, *, in_channels: int = 3, num_classes: int = 10, width: float = 1.0, **kwargs: Any
) -> nn.Module:
    """``torchvision.models.get_model(name, num_classes=num_classes, **kwargs)``, for ``in_channels``.

    If ``in_channels`` is not 3, the model's first ``nn.Conv2d`` (in module order:
    the stem of every torchvision classifier) is replaced by one with the same
    kernel, stride, padding, dilation and bias but ``in_channels`` inputs:

    - with pretrained ``weights=``, a one-channel kernel is the sum of the R, G and
      B kernels, so a grey image gives the response its RGB copy would; for other
      counts the RGB kernel is tiled over the new channels and scaled by
      ``3 / in_channels`` (timm's ``adapt_input_conv`` convention);
    - otherwise its kernel is drawn from N(0, s^2), s being the standard deviation
      of the replaced layer's initial kernel, keeping the model's initialisation scale.

    torchvision is imported only here.

    Args:
        name: a torchvision classification model (``torchvision.models.list_models(module=torchvision.models)``).
        in_channels: image channels.
        num_classes: outputs of the classifier (must match the weights' classes if ``weights`` is given).
        width: only 1.0 (torchvision models take their own width arguments through ``kwargs``).
        **kwargs: passed to ``torchvision.models.get_model`` (``weights=...``, ``dropout=...``).

    Raises:
        UnknownModelError: torchvision has no classification model of that name.
        HwProfilesError: torchvision is not installed (the ``vision`` extra).

    >>> model = torchvision_model("resnet18", in_channels=1)  # conv1 takes 1 channel
    """
    try:
        import torchvision.models as tvm
    except ImportError as exc:  # an optional extra: the zoo's own models need no torchvision
        raise HwProfilesError(
            f"'{TORCHVISION_PREFIX}{name}' needs torchvision ({exc}): pip install 'hwprofiles[vision]' "
            "(or the torchvision release that matches your torch)"
        ) from exc

    if width != 1.0:
        raise ValueError(
            f"'{TORCHVISION_PREFIX}{name}' takes no width multiplier; pass the model's own "
            "argument instead (e.g. width_mult=0.5 for mobilenet_v2)"
        )
    valid = tvm.list_models(module=tvm)  # classification models only
    if name not in valid:
        hint = did_you_mean(name, valid, lambda c: repr(TORCHVISION_PREFIX + c))
        raise UnknownModelError(
            f"unknown torchvision classification model '{name}'.{hint} Valid names: {', '.join(valid)}."
        )
    model = tvm.get_model(name, num_classes=num_classes, **kwargs)
    if in_channels != 3:
        adapt_first_conv(model, in_channels, pretrained=kwargs.get("weights") is not None)
    return model


def adapt_first_conv(model: nn.Module, in_channels: int, *, pretrained: bool) -> nn.Module:
    """Replace the first ``nn.Conv2d`` of ``model`` by one taking ``in_channels`` inputs (see above)."""
    import torch
    import torch.nn as nn

    found = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if found is None:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d whose input channels could be changed")
    name, conv = found
    if conv.groups != 1:
        raise ValueError(f"the first convolution of {type(model).__name__} ('{name}') is grouped; cannot adapt it")
    # an nn.Conv2d stores its sizes as 2-tuples, which its constructor's types do not say
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        stride=conv.stride,  # type: ignore[arg-type]
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        old = conv.weight
        if pretrained and in_channels == 1:
            new.weight.copy_(old.sum(dim=1, keepdim=True))
        elif pretrained:
            reps = math.ceil(in_channels / old.shape[1])
            new.weight.copy_(old.repeat(1, reps, 1, 1)[:, :in_channels] * (old.shape[1] / in_channels))
        else:
            new.weight.normal_(0.0, float(old.std()))
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)
    return model
