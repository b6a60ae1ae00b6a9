"""Pieces the zoo's architectures share: width scaling, initialisation, input fitting."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(channels: int, width: float) -> int:
    """``channels`` times the width multiplier, rounded, at least 1."""
    if not width > 0:
        raise ValueError(f"width must be a positive multiplier, not {width!r}")
    return max(1, int(round(channels * width)))


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet's channel rounding: the nearest multiple of ``divisor``, never below 90% of ``value``."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def init_weights(model: nn.Module) -> None:
    """He initialisation for convolutions (fan-out, as torchvision's ResNets), unit BatchNorm."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class FitInput(nn.Module):
    """Resample images to ``size x size`` by adaptive average pooling, only when they differ.

    A no-op on inputs of the native size. It is input preparation, not a layer of
    the network, so under ``placement: every_layer`` it carries no noise of its own.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == (self.size, self.size):
            return x
        return F.adaptive_avg_pool2d(x, self.size)

    def extra_repr(self) -> str:
        return f"size={self.size}"
