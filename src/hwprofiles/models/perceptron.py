"""A multilayer perceptron on flattened images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from hwprofiles.models._common import FitInput, scaled


class MLP(nn.Module):
    """Flatten, then ``Linear -> ReLU`` per hidden layer, then a linear classifier.

    Images of another size than ``image_size`` are first resampled to it (see
    :class:`~hwprofiles.models._common.FitInput`), so one model accepts both 28x28
    and 32x32 inputs; build it with the size of your data to keep every pixel.
    The arguments are those of :func:`mlp`, which holds their defaults.
    """

    def __init__(
        self, in_channels: int, num_classes: int, width: float, hidden: Sequence[int], image_size: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [FitInput(image_size), nn.Flatten()]
        features = in_channels * image_size * image_size
        for h in hidden:
            h = scaled(h, width)
            layers += [nn.Linear(features, h), nn.ReLU()]
            features = h
        layers.append(nn.Linear(features, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def mlp(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width: float = 1.0,
    hidden: Sequence[int] = (512, 256),
    image_size: int = 28,
) -> MLP:
    """An MLP with hidden layers ``hidden`` (each scaled by ``width``).

    Args:
        in_channels: image channels.
        num_classes: outputs of the last layer.
        width: multiplier of every hidden layer's size.
        hidden: hidden layer sizes before scaling.
        image_size: the side of the images the first layer is sized for (28 or 32).

    >>> model = mlp(in_channels=1, hidden=(300, 100))
    """
    return MLP(in_channels, num_classes, width, hidden, image_size)
