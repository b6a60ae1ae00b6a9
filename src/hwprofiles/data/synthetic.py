"""A small generated dataset for tests and quick checks, needing no files.

Each class has a smooth random template (a coarse 4x4 pattern of +-1 per channel,
bilinearly upsampled); a sample is its class template at a random contrast plus
Gaussian pixel noise. With the default noise a small model separates the classes
almost perfectly within a few dozen steps, yet no two samples are alike.

    >>> from hwprofiles.data.synthetic import make_synthetic
    >>> x_train, y_train, x_test, y_test = make_synthetic(num_train=20, num_test=10)
    >>> tuple(x_train.shape), tuple(y_test.shape)
    ((20, 1, 28, 28), (10,))
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hwprofiles.errors import DatasetError

# independent random streams for one seed, so that e.g. changing num_test leaves
# the training split as it was
_TEMPLATES, _TRAIN, _TEST = 0, 1, 2


def _templates(num_classes: int, in_channels: int, image_size: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, _TEMPLATES])
    coarse = rng.choice([-1.0, 1.0], size=(num_classes, in_channels, 4, 4)).astype(np.float32)
    return F.interpolate(torch.from_numpy(coarse), size=(image_size, image_size), mode="bilinear", align_corners=True)


def _draw(templates: torch.Tensor, n: int, noise: float, seed: int, stream: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng([seed, stream])
    num_classes = templates.shape[0]
    labels = rng.permutation(np.arange(n) % num_classes)  # balanced classes
    contrast = rng.uniform(0.5, 1.5, size=(n, 1, 1, 1)).astype(np.float32)
    pixels = rng.standard_normal(size=(n, *templates.shape[1:]), dtype=np.float32)
    labels_t = torch.from_numpy(labels).long()
    images = templates[labels_t] * torch.from_numpy(contrast) + noise * torch.from_numpy(pixels)
    return images, labels_t


def make_synthetic(
    num_train: int = 512,
    num_test: int = 256,
    *,
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 28,
    noise: float = 1.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Generate the synthetic dataset, unnormalised.

    The same arguments always give the same tensors.

    Args:
        num_train: training samples.
        num_test: test samples.
        num_classes: classes, equally many samples of each (up to one).
        in_channels: image channels.
        image_size: image height and width.
        noise: standard deviation of the pixel noise; the templates are +-1.
        seed: seeds the templates and both splits.

    Returns:
        ``(train_images, train_labels, test_images, test_labels)``; images
        ``(N, in_channels, image_size, image_size)`` float32, labels int64.

    Raises:
        DatasetError: a size or count is below 1, or ``noise`` is negative.
    """
    for what, value in [
        ("num_train", num_train),
        ("num_test", num_test),
        ("num_classes", num_classes),
        ("in_channels", in_channels),
        ("image_size", image_size),
    ]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DatasetError(f"synthetic dataset: {what}={value!r} must be a positive whole number")
    if not noise >= 0:
        raise DatasetError(f"synthetic dataset: noise={noise!r} must be >= 0")
    templates = _templates(num_classes, in_channels, image_size, seed)
    x_train, y_train = _draw(templates, num_train, noise, seed, _TRAIN)
    x_test, y_test = _draw(templates, num_test, noise, seed, _TEST)
    return x_train, y_train, x_test, y_test
