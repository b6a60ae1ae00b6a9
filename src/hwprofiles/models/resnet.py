"""ResNets for small images (He et al. 2016): a 3x3 stem, no max pooling.

``resnet20``/``resnet32``/``resnet56`` are the paper's CIFAR networks (three stages
of 16, 32 and 64 channels); ``resnet18`` is the ImageNet ResNet-18 with the CIFAR
stem (four stages of 64 to 512 channels). Where a block changes shape, its
shortcut is a 1x1 convolution with batch normalisation (the paper's option B).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from hwprofiles.models._common import init_weights, scaled


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch normalisation, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        self.relu2 = nn.ReLU()  # its own module: QAT observers and noise sites see each activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem, stages of :class:`BasicBlock` (the first block of each later stage halves the size), pooling, classifier."""

    def __init__(
        self,
        blocks_per_stage: Sequence[int],
        stage_channels: Sequence[int],
        in_channels: int = 3,
        num_classes: int = 10,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        channels = [scaled(c, width) for c in stage_channels]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels[0], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
            nn.ReLU(),
        )
        stages: list[nn.Module] = []
        in_planes = channels[0]
        for i, (n, planes) in enumerate(zip(blocks_per_stage, channels)):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride=2 if i > 0 and j == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(in_planes, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.stages(self.stem(x))))


def _cifar_resnet(depth: int, in_channels: int, num_classes: int, width: float) -> CifarResNet:
    n = (depth - 2) // 6
    return CifarResNet((n, n, n), (16, 32, 64), in_channels, num_classes, width)


def resnet20(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> CifarResNet:
    """ResNet-20: three stages of three blocks, 16/32/64 channels (0.27 M parameters).

    Args:
        in_channels: image channels.
        num_classes: outputs of the classifier.
        width: multiplier of every convolution's channels.

    >>> model = resnet20(in_channels=1)
    """
    return _cifar_resnet(20, in_channels, num_classes, width)


def resnet32(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> CifarResNet:
    """ResNet-32: five blocks per stage (arguments as :func:`resnet20`).

    >>> model = resnet32()
    """
    return _cifar_resnet(32, in_channels, num_classes, width)


def resnet56(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> CifarResNet:
    """ResNet-56: nine blocks per stage (arguments as :func:`resnet20`).

    >>> model = resnet56()
    """
    return _cifar_resnet(56, in_channels, num_classes, width)


def resnet18(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> CifarResNet:
    """ResNet-18, CIFAR stem: four stages of two blocks, 64-512 channels (arguments as :func:`resnet20`).

    >>> model = resnet18(width=0.5)
    """
    return CifarResNet((2, 2, 2, 2), (64, 128, 256, 512), in_channels, num_classes, width)
