"""The built-in training methods: how each turns a float model into the model that is
trained, whether it trains under noise, and how its checkpoint becomes a float-structured
model to evaluate.

- **clean**: the float model as it is.
- **qat**, **qat-learned**: the model of :func:`hwprofiles.to_qat` (constant or learned
  steps); evaluated with its weights quantized once, as a chip is programmed.
- **nit**, **vant**: the noisy twin under the training profile (VANT: with a per-sample
  sigma on its Gaussian entries), a new chip each epoch, the noise scale constant or
  ramped up; evaluated as the float model.

    >>> from hwprofiles.train import TrainConfig
    >>> TrainConfig(method="vant", profile="gaussian-additive").training_method
    NoiseInjection(variance_aware=True)
"""

from __future__ import annotations

import torch
import torch.nn as nn

from hwprofiles.entries.base import VarianceAware
from hwprofiles.errors import HwProfilesError
from hwprofiles.nn.convert import profile_of, to_noisy
from hwprofiles.nn.qat import bake_qat, to_qat
from hwprofiles.profiles import Profile, load_profile
from hwprofiles.train.config import NoiseSchedule, TrainConfig, TrainingMethod


class Clean(TrainingMethod):
    """Float training, without noise or quantization."""

    def __repr__(self) -> str:
        return "Clean()"


class Qat(TrainingMethod):
    """Quantization-aware training: ``config.bits``, constant step ``config.act_scale``
    (or, ``learned``, LSQ steps starting there)."""

    def __init__(self, *, learned: bool) -> None:
        self.learned = learned

    def __repr__(self) -> str:
        return f"Qat(learned={self.learned})"

    def prepare(self, model: nn.Module, config: TrainConfig) -> nn.Module:
        return to_qat(model, bits=config.bits, act_scale=config.act_scale, learned=self.learned)

    def for_evaluation(self, model: nn.Module, state_dict: dict[str, torch.Tensor], config: TrainConfig) -> nn.Module:
        """The QAT model holding the checkpoint, its weights quantized once (the weights a chip
        would be programmed with) and its activation quantizers kept."""
        model = self.prepare(model, config)
        model.load_state_dict(state_dict)
        return bake_qat(model)


class NoiseInjection(TrainingMethod):
    """Noise-injection training under ``config.profile`` (``variance_aware``: VANT's
    per-sample sigma ``alpha sigma + theta |z|`` on its Gaussian entries)."""

    def __init__(self, *, variance_aware: bool) -> None:
        self.variance_aware = variance_aware

    def __repr__(self) -> str:
        return f"NoiseInjection(variance_aware={self.variance_aware})"

    def check(self, config: TrainConfig) -> None:
        if not config.profile:
            raise HwProfilesError(f"method '{config.method}' trains under a profile: pass --profile NAME")

    def label(self, config: TrainConfig) -> str:
        return f"{config.method}:{config.profile}"

    def training_profile(self, config: TrainConfig) -> Profile:
        """The profile the run trains under, at its training noise scale."""
        assert config.profile is not None
        profile = load_profile(config.profile)
        if config.noise_scale is not None:
            profile = profile.with_noise_scale(config.noise_scale)
        if not self.variance_aware:
            return profile
        per_sample = VarianceAware(alpha=config.alpha, theta=config.theta)
        entries = [
            e.model_copy(update={"per_sample": per_sample}) if "per_sample" in type(e).model_fields else e
            for e in profile.noise
        ]
        if all(a is b for a, b in zip(entries, profile.noise)):
            raise HwProfilesError(
                f"vant draws a per-sample sigma for Gaussian noise entries; profile '{profile.name}' has none. "
                "Use nit, or a gaussian-* profile."
            )
        return profile.model_copy(update={"noise": entries})

    def prepare(self, model: nn.Module, config: TrainConfig) -> nn.Module:
        return to_noisy(model, self.training_profile(config))

    def noise_schedule(self, model: nn.Module, config: TrainConfig, steps_per_epoch: int) -> NoiseSchedule:
        ramp = config.ramp_epochs * steps_per_epoch if config.schedule == "ramp" else 0
        return NoiseSchedule(profile_of(model).noise_scale, ramp_steps=ramp)


CLEAN = Clean()
QAT = Qat(learned=False)
QAT_LEARNED = Qat(learned=True)
NIT = NoiseInjection(variance_aware=False)
VANT = NoiseInjection(variance_aware=True)


def prepare_for_training(model: nn.Module, config: TrainConfig) -> nn.Module:
    """Wrap a freshly built float model for ``config.method``."""
    return config.training_method.prepare(model, config)


def model_for_evaluation(model: nn.Module, state_dict: dict[str, torch.Tensor], config: TrainConfig) -> nn.Module:
    """A float-structured model holding a checkpoint's weights, ready for :func:`hwprofiles.to_noisy`
    (see :meth:`TrainingMethod.for_evaluation`)."""
    return config.training_method.for_evaluation(model, state_dict, config)


__all__ = [
    "CLEAN",
    "NIT",
    "QAT",
    "QAT_LEARNED",
    "VANT",
    "Clean",
    "NoiseInjection",
    "Qat",
    "model_for_evaluation",
    "prepare_for_training",
]
