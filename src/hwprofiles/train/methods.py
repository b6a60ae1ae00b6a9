"""How each training method turns a float model into the model that is trained,
and how a checkpoint becomes a float-structured model to evaluate."""

from __future__ import annotations

import torch
import torch.nn as nn

from hwprofiles.entries.base import VarianceAware
from hwprofiles.errors import HwProfilesError
from hwprofiles.profiles import Profile, load_profile
from hwprofiles.train.config import TrainConfig


def training_profile(config: TrainConfig) -> Profile:
    """The profile NIT/VANT trains under (with VANT's per-sample sigma on its Gaussian entries)."""
    assert config.profile is not None
    profile = load_profile(config.profile)
    if config.noise_scale is not None:
        profile = profile.with_noise_scale(config.noise_scale)
    if config.method == "vant":
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
        profile = profile.model_copy(update={"noise": entries})
    return profile


def prepare_for_training(model: nn.Module, config: TrainConfig) -> nn.Module:
    """Wrap a freshly built float model for ``config.method``."""
    if config.method in ("qat", "qat-learned"):
        from hwprofiles.nn.qat import to_qat

        return to_qat(model, bits=config.bits, act_scale=config.act_scale, learned=config.method == "qat-learned")
    if config.method in ("nit", "vant"):
        from hwprofiles.nn.convert import to_noisy

        return to_noisy(model, training_profile(config))
    return model


def model_for_evaluation(model: nn.Module, state_dict: dict[str, torch.Tensor], config: TrainConfig) -> nn.Module:
    """A float-structured model holding a checkpoint's weights, ready for :func:`hwprofiles.to_noisy`.

    QAT models keep their activation quantizers and have their weights quantized
    once (the weights a chip would be programmed with); every other method gives
    the plain float model (the noisy twins of NIT share the float layers' keys; the
    input bounds their analog products calibrated in training are dropped, as the
    evaluation profile calibrates its own).
    """
    if config.method in ("qat", "qat-learned"):
        from hwprofiles.nn.qat import bake_qat, to_qat

        model = to_qat(model, bits=config.bits, act_scale=config.act_scale, learned=config.method == "qat-learned")
        model.load_state_dict(state_dict)
        return bake_qat(model)
    from hwprofiles.nn.mvm import strip_calibration

    model.load_state_dict(strip_calibration(state_dict))
    return model
