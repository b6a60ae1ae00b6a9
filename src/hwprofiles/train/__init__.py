"""Training: clean, QAT (constant or learned scale), noise-injection training (NIT, VANT),
and the methods plugins register."""

from hwprofiles.train.checkpoint import load_checkpoint, save_checkpoint
from hwprofiles.train.config import (
    METHODS,
    NoiseSchedule,
    TrainConfig,
    TrainingMethod,
    TrainingMethodRegistrar,
    get_training_method,
    list_training_methods,
    register_training_method,
)
from hwprofiles.train.loop import TrainingDivergedError, train

__all__ = [
    "METHODS",
    "NoiseSchedule",
    "TrainConfig",
    "TrainingDivergedError",
    "TrainingMethod",
    "TrainingMethodRegistrar",
    "get_training_method",
    "list_training_methods",
    "load_checkpoint",
    "register_training_method",
    "save_checkpoint",
    "train",
]
