"""The model zoo: the architectures of the study, and any torchvision classifier.

    >>> from hwprofiles.models import get_model, list_models
    >>> list_models()
    ['lenet5', 'mlp', 'mobilenetv2', 'resnet18', 'resnet20', 'resnet32', 'resnet56', 'vgg11', 'vgg11_bn']
    >>> model = get_model("resnet20", in_channels=1, num_classes=10)    # Fashion-MNIST
    >>> other = get_model("torchvision:resnet18", in_channels=1)        # any torchvision classifier

Every built-in builder takes ``in_channels``, ``num_classes`` and ``width`` (a
width multiplier) and accepts 28x28 and 32x32 images. Plugins add models through
the ``hwprofiles_register_models`` hook. Importing this package does not import
torch; the builders (``resnet20``, ...) are imported on first attribute access.
"""

from __future__ import annotations

from hwprofiles.errors import DuplicateModelError, UnknownModelError
from hwprofiles.lazy import lazy_module
from hwprofiles.models.registry import (
    ModelEntry,
    ModelRegistrar,
    get_model,
    get_model_entry,
    list_models,
    register_model,
    registered_models,
)

# name -> module holding it; imported on first attribute access (PEP 562)
_LAZY = {
    "lenet5": "hwprofiles.models.lenet",
    "mlp": "hwprofiles.models.perceptron",
    "mobilenetv2": "hwprofiles.models.mobilenet",
    "resnet18": "hwprofiles.models.resnet",
    "resnet20": "hwprofiles.models.resnet",
    "resnet32": "hwprofiles.models.resnet",
    "resnet56": "hwprofiles.models.resnet",
    "vgg11": "hwprofiles.models.vgg",
    "vgg11_bn": "hwprofiles.models.vgg",
    "torchvision_model": "hwprofiles.models.torchvision_zoo",
}

__all__ = [
    "DuplicateModelError",
    "ModelEntry",
    "ModelRegistrar",
    "UnknownModelError",
    "get_model",
    "get_model_entry",
    "list_models",
    "register_model",
    "registered_models",
    *_LAZY,
]


__getattr__, __dir__ = lazy_module(__name__, _LAZY, globals())
