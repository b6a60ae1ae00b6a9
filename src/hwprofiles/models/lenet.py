"""LeNet-5 (LeCun et al. 1998), with ReLU and max pooling as it is trained today."""

from __future__ import annotations

import torch
import torch.nn as nn

from hwprofiles.models._common import scaled


class LeNet5(nn.Module):
    """Two 5x5 convolutions (6, 16 channels), then 120-84-``num_classes`` fully connected.

    The first convolution pads by 2, so a 28x28 image is seen as the original 32x32
    one. The second pooling is adaptive (to 5x5): plain 2x2 max pooling on 28x28
    inputs, slightly overlapping windows on 32x32 ones; the classifier always sees
    16x5x5 features.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> None:
        super().__init__()
        c1, c2 = scaled(6, width), scaled(16, width)
        f1, f2 = scaled(120, width), scaled(84, width)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.ReLU(),
            nn.AdaptiveMaxPool2d(5),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * 5 * 5, f1),
            nn.ReLU(),
            nn.Linear(f1, f2),
            nn.ReLU(),
            nn.Linear(f2, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def lenet5(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> LeNet5:
    """LeNet-5 for 28x28 or 32x32 images.

    Args:
        in_channels: image channels (1 for Fashion-MNIST, 3 for CIFAR).
        num_classes: outputs of the last layer.
        width: multiplier of every layer's channels and features.

    >>> model = lenet5(in_channels=1)
    """
    return LeNet5(in_channels, num_classes, width)
