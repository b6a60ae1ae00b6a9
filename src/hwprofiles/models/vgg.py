"""VGG-11 (Simonyan and Zisserman 2015, configuration A), CIFAR style."""

from __future__ import annotations

import torch
import torch.nn as nn

from hwprofiles.models._common import init_weights, scaled

VGG11_CONFIG: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    """3x3 convolutions and max pooling as in ``config``, then one linear classifier.

    As usual for 32x32 images the three 4096-wide layers of the ImageNet model are
    replaced by a single linear layer. Pooling rounds up (``ceil_mode``) so that
    28x28 inputs survive five halvings, and the fifth pooling is adaptive (to 1x1),
    so the classifier sees 512 features for 28x28 and 32x32 inputs alike.
    """

    def __init__(
        self,
        config: tuple[int | str, ...],
        in_channels: int = 3,
        num_classes: int = 10,
        width: float = 1.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        last_pool = max(i for i, v in enumerate(config) if v == "M")
        for i, v in enumerate(config):
            if v == "M":
                layers.append(nn.AdaptiveMaxPool2d(1) if i == last_pool else nn.MaxPool2d(2, ceil_mode=True))
                continue
            out = scaled(int(v), width)
            layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU())
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def vgg11(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> VGG:
    """VGG-11 without batch normalisation.

    Args:
        in_channels: image channels.
        num_classes: outputs of the classifier.
        width: multiplier of every convolution's channels.

    >>> model = vgg11(in_channels=1, width=0.5)
    """
    return VGG(VGG11_CONFIG, in_channels, num_classes, width, batch_norm=False)


def vgg11_bn(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> VGG:
    """VGG-11 with batch normalisation after every convolution (arguments as :func:`vgg11`).

    >>> model = vgg11_bn()
    """
    return VGG(VGG11_CONFIG, in_channels, num_classes, width, batch_norm=True)
