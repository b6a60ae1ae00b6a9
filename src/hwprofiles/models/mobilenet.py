"""MobileNetV2 (Sandler et al. 2018) with strides for 28-32 px images."""

from __future__ import annotations

import torch
import torch.nn as nn

from hwprofiles.models._common import init_weights, make_divisible

# (expansion t, output channels c, blocks n, stride of the first block s), as the
# paper's Table 2 except the second stage: stride 1 instead of 2 (and the stem
# stride 1 instead of 2), so 32x32 inputs reach the last stage at 4x4, not 1x1.
CIFAR_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _conv_bn(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if relu:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expansion, 3x3 depthwise, 1x1 linear projection; a residual where shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(_conv_bn(in_ch, hidden, 1))
        layers += [
            _conv_bn(hidden, hidden, 3, stride=stride, groups=hidden),
            _conv_bn(hidden, out_ch, 1, relu=False),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """Stem (3x3, stride 1), inverted residual stages, 1x1 head conv, pooling, classifier.

    Activations are ``nn.ReLU6`` modules, as in the paper; the clipping also bounds
    activations, which analog input ranges (DACs) like.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        if not width > 0:
            raise ValueError(f"width must be a positive multiplier, not {width!r}")
        channels = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [_conv_bn(in_channels, channels, 3)]
        for t, c, n, s in CIFAR_SETTINGS:
            out = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        layers.append(_conv_bn(channels, last, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(last, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def mobilenetv2(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> MobileNetV2:
    """MobileNetV2 for 28x28 and 32x32 images.

    Args:
        in_channels: image channels.
        num_classes: outputs of the classifier.
        width: the paper's width multiplier (channels rounded to multiples of 8; the
            1280-channel head only grows, for ``width > 1``).

    >>> model = mobilenetv2(width=0.5)
    """
    return MobileNetV2(in_channels, num_classes, width)
