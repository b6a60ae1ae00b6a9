"""The built-in training methods: how each turns a float model into the model that is
trained, whether it trains under noise, and how its checkpoint becomes a float-structured
model to evaluate.

- **clean**: the float model as it is.
- **qat**, **qat-learned**: the model of :func:`hwprofiles.to_qat` (constant or learned
  steps); evaluated with its weights quantized once, as a chip is programmed.
- **nit**, **vant**: the noisy twin under the training profile (VANT: with a per-sample
  sigma on its Gaussian entries), a new chip each epoch, the noise scale constant or
  ramped up; evaluated as the float model. Given several profiles
  (``pcm-joshi2020,rram-neurram:2`` or ``all``), every training step draws its noise from
  one of them, sampled by weight: a model meant for hardware whose noise is not known.

    >>> from hwprofiles.train import TrainConfig
    >>> TrainConfig(method="vant", profile="gaussian-additive").training_method
    NoiseInjection(variance_aware=True)
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn as nn

from hwprofiles import plugins
from hwprofiles.entries.base import VarianceAware
from hwprofiles.errors import HwProfilesError
from hwprofiles.nn.convert import profile_of, program, set_profile, to_noisy
from hwprofiles.nn.qat import bake_qat, to_qat
from hwprofiles.nn.site import derive_seed
from hwprofiles.profiles import Profile, list_profiles, load_profile
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


def profile_weights(spec: str) -> list[tuple[str, float]]:
    """The profiles a training run names, with their sampling weights: ``NAME``,
    ``NAME,NAME:WEIGHT,...`` (weight 1 where none is given), or ``all`` (every profile
    in the library that has noise).

    >>> profile_weights("pcm-joshi2020,rram-neurram:2")
    [('pcm-joshi2020', 1.0), ('rram-neurram', 2.0)]

    Raises:
        HwProfilesError: an empty name, a weight that is not a positive number, or a profile named twice.
    """
    if spec.strip() == "all":
        return [(name, 1.0) for name in list_profiles() if load_profile(name).noise]
    weights: dict[str, float] = {}
    for part in spec.split(","):
        name, _, weight_text = part.strip().partition(":")
        name = name.strip()
        try:
            weight = float(weight_text) if weight_text.strip() else 1.0
        except ValueError:
            weight = float("nan")
        if not name or not (math.isfinite(weight) and weight > 0):
            raise HwProfilesError(
                f"profile set '{spec}': give NAME, NAME,NAME:WEIGHT,... (weights positive numbers) or all"
            )
        if name in weights:
            raise HwProfilesError(f"profile set '{spec}': profile '{name}' is named twice")
        weights[name] = weight
    return list(weights.items())


class NoiseInjection(TrainingMethod):
    """Noise-injection training under ``config.profile`` (``variance_aware``: VANT's
    per-sample sigma ``alpha sigma + theta |z|`` on its Gaussian entries).

    With several profiles, each training step draws its noise from one of them, chosen at
    random by weight from a generator seeded by the epoch's noise seed and the step (so a
    resumed run draws what an uninterrupted one would); the per-epoch test accuracy is
    measured under the first.
    """

    def __init__(self, *, variance_aware: bool) -> None:
        self.variance_aware = variance_aware

    def __repr__(self) -> str:
        return f"NoiseInjection(variance_aware={self.variance_aware})"

    def check(self, config: TrainConfig) -> None:
        if not config.profile:
            raise HwProfilesError(f"method '{config.method}' trains under a profile: pass --profile NAME")
        plain = self._plain_profiles(config)  # unknown names fail here, with close matches
        if self.variance_aware and all(self._variance_aware(p, config) is p for p in plain):
            raise HwProfilesError(
                f"vant draws a per-sample sigma for Gaussian noise entries; profile '{config.profile}' has none. "
                "Use nit, or a gaussian-* profile."
            )

    def label(self, config: TrainConfig) -> str:
        spec = (config.profile or "").strip()
        names = "all" if spec == "all" else "+".join(name for name, _ in profile_weights(spec))
        return f"{config.method}:{names}"

    def _plain_profiles(self, config: TrainConfig) -> list[Profile]:
        profiles = [load_profile(name) for name, _ in profile_weights(config.profile or "")]
        if config.noise_scale is not None:
            profiles = [p.with_noise_scale(config.noise_scale) for p in profiles]
        return profiles

    def training_profiles(self, config: TrainConfig) -> list[Profile]:
        """The profiles the run trains under, at its training noise scale (VANT: with per-sample sigmas)."""
        return [self._variance_aware(p, config) for p in self._plain_profiles(config)]

    def training_profile(self, config: TrainConfig) -> Profile:
        """The (first) profile the run trains under, at its training noise scale."""
        return self.training_profiles(config)[0]

    def _variance_aware(self, profile: Profile, config: TrainConfig) -> Profile:
        """``profile`` with VANT's per-sample sigma on its Gaussian entries (the same object
        for NIT, or when it has none)."""
        if not self.variance_aware:
            return profile
        per_sample = VarianceAware(alpha=config.alpha, theta=config.theta)
        entries = [
            e.model_copy(update={"per_sample": per_sample}) if "per_sample" in type(e).model_fields else e
            for e in profile.noise
        ]
        if all(a is b for a, b in zip(entries, profile.noise)):
            return profile
        return profile.model_copy(update={"noise": entries})

    def prepare(self, model: nn.Module, config: TrainConfig) -> nn.Module:
        return to_noisy(model, self.training_profile(config))

    def noise_schedule(self, model: nn.Module, config: TrainConfig, steps_per_epoch: int) -> NoiseSchedule:
        ramp = config.ramp_epochs * steps_per_epoch if config.schedule == "ramp" else 0
        return NoiseSchedule(profile_of(model).noise_scale, ramp_steps=ramp)

    def select_noise(self, model: nn.Module, config: TrainConfig, step: int | None, seed: int) -> None:
        spec = config.profile or ""
        if "," not in spec and spec.strip() != "all":
            return
        weights, profiles = _profile_set(self, spec, config.noise_scale, config.alpha, config.theta)
        if step is None:
            set_profile(model, profiles[0])
            return
        gen = torch.Generator().manual_seed(derive_seed(seed, step, 2))
        choice = int(torch.multinomial(torch.tensor(weights), 1, generator=gen))
        set_profile(model, profiles[choice])
        program(model, seed=derive_seed(seed, step, 3))  # fresh noise each step, not the stream set_profile restarts


@functools.lru_cache(maxsize=16)
def _profile_set(
    method: NoiseInjection, spec: str, noise_scale: float | None, alpha: float, theta: float
) -> tuple[list[float], list[Profile]]:
    """The weights and training profiles of a profile set, loaded once per run rather than
    at every step (loading ``all`` takes longer than a small net's training step)."""
    config = TrainConfig(method="nit", profile=spec, noise_scale=noise_scale, alpha=alpha, theta=theta)
    return [w for _, w in profile_weights(spec)], method.training_profiles(config)


plugins.on_reset(_profile_set.cache_clear)  # plugins may bring other profiles or kinds

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
