"""Calibration of the analog input ranges, and the checks that keep NaN and inf out of them.

A calibrated DAC's input bound is set once, from representative data, by :func:`calibrate`
(what ``to_noisy(..., calibration=...)`` runs); it is a buffer of each analog product, so
it is saved and loaded with the model. A non-finite network input is refused with the
samples that hold it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn as nn

from hwprofiles.nn.analog import all_finite
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.profiles import Profile


def check_finite(x: torch.Tensor, what: str) -> None:
    """Raise ValueError naming how many values of ``x`` are NaN or inf, and in which samples (dim 0)."""
    if all_finite(x):
        return
    bad = ~torch.isfinite(x)
    count = int(bad.sum())
    samples = bad.reshape(bad.shape[0], -1).any(dim=1).nonzero().flatten().tolist() if x.dim() else []
    shown = ", ".join(str(i) for i in samples[:10]) + (", ..." if len(samples) > 10 else "")
    where = f" in sample(s) {shown} (index along dim 0, of {x.shape[0]})" if samples else ""
    raise ValueError(
        f"{what} holds {count} non-finite value(s) (NaN or inf){where}. Noise, DAC ranges and calibration "
        "cannot be computed from them; drop or repair those samples before the forward "
        "(torch.isfinite(x).flatten(1).all(1) marks the good ones)."
    )


class FiniteInputCheck:
    """A forward pre-hook refusing non-finite network inputs, naming the samples that hold them.

    One NaN spreads through calibration bounds and noise scales that mix samples; a clear
    error beats a batch of NaN outputs. It checks the network input only (one cheap pass).
    """

    def __call__(self, module: nn.Module, args: tuple) -> None:
        for position, x in enumerate(args):
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                check_finite(
                    x, "the input of the noisy model" if position == 0 else f"input {position} of the noisy model"
                )


def analog_products(model: nn.Module) -> list[AnalogMVM]:
    """Every analog product of a converted model, in module order."""
    return [m for m in model.modules() if isinstance(m, AnalogMVM)]


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[torch.Tensor]) -> nn.Module:
    """Set every calibrated DAC's input bound, then every calibrated ADC's range, from data
    (a named step, saved with the model).

    Runs ``batches`` through the model in eval mode, once for the DACs and once more for the
    ADCs (whose partial sums depend on the input bounds); each analog product takes the
    largest per-batch percentile seen (the profile's ``calibration_percentile``) of |input|
    as its bound and of |partial sums| as its ADC range (at most the ADC's bound), buffers
    in the model's ``state_dict``. Products with fixed ranges are untouched.
    Use a few batches of training inputs, as representative as the data evaluated later.

    Args:
        model: a model made by :func:`to_noisy`.
        batches: input tensors (what the model's forward takes first).

    Returns:
        ``model``, in the mode it was in.

    Raises:
        ValueError: no batch was given, or a batch holds NaN or inf.

    >>> import torch, torch.nn as nn, hwprofiles
    >>> noisy = hwprofiles.to_noisy(nn.Sequential(nn.Linear(8, 2)), "pcm-joshi2020")
    >>> _ = hwprofiles.calibrate(noisy, [torch.randn(32, 8) for _ in range(4)])
    >>> noisy[0].mvm.bound > 0
    True
    """
    products = analog_products(model)
    stages: list[Literal["dac", "adc"]] = [
        stage for stage in ("dac", "adc") if any(_calibrated(m.site.profile, stage) for m in products)
    ]
    was_training = model.training
    model.eval()
    batches = list(batches)  # the DAC first, then the ADC over the same batches
    try:
        for stage in stages or ["dac"]:
            with contextlib.ExitStack() as stack:
                for mvm in products:
                    stack.enter_context(mvm.calibration(stage))
                for i, batch in enumerate(batches):
                    if isinstance(batch, torch.Tensor) and batch.is_floating_point():
                        check_finite(batch, f"calibration batch {i}")
                    model(batch)
    finally:
        model.train(was_training)
    if not batches:
        raise ValueError("calibrate needs at least one batch of inputs (a few batches of training data)")
    return model


def _calibrated(profile: Profile, stage: Literal["dac", "adc"]) -> bool:
    spec = profile.dac if stage == "dac" else profile.adc
    return spec is not None and spec.bound_mode == "calibrated"


def needs_calibration(profile: Profile) -> bool:
    """Whether a profile sets a DAC bound or an ADC range from data (models under it must be calibrated)."""
    return _calibrated(profile, "dac") or _calibrated(profile, "adc")


__all__ = ["FiniteInputCheck", "analog_products", "calibrate", "check_finite", "needs_calibration"]
