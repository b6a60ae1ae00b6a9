"""Training: clean, QAT (constant or learned scale), noise-injection training (NIT, VANT)."""

from hwprofiles.train.checkpoint import load_checkpoint, save_checkpoint
from hwprofiles.train.config import METHODS, TrainConfig
from hwprofiles.train.loop import TrainingDivergedError, train

__all__ = ["METHODS", "TrainConfig", "TrainingDivergedError", "load_checkpoint", "save_checkpoint", "train"]
