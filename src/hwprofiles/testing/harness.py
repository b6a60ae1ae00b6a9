"""What the conformance checks run a kind on: a profile holding only its entry, one small
model per kind of twin, and stage tensors and contexts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from hwprofiles.nn import analog
from hwprofiles.nn.convert import program, to_noisy
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.noise.base import STAGES, NoiseKind, StageContext, WeightState
from hwprofiles.profiles import Profile, parse_profile
from hwprofiles.registry import NoiseModel

FAN_IN = 16  # inputs of the linear test layer; the stage tensors use the same size


@dataclass
class Case:
    """One kind under check: its registration, implementation, validated entry, a profile
    holding only that entry, and the devices to run on."""

    model: NoiseModel
    implementation: type[NoiseKind]
    entry: Any
    profile: Profile
    deterministic: bool
    device: torch.device
    devices: list[torch.device]

    @property
    def kind(self) -> str:
        """The kind's name."""
        return self.model.kind

    @property
    def stages(self) -> list[str]:
        """The stages the kind declares, in the engine's order."""
        return [s for s in STAGES if s in self.implementation.stages]


def require(condition: bool, message: str) -> None:
    """Fail the check with ``message`` unless ``condition`` holds.

    An explicit raise, not ``assert``: the kit must also fail under python -O.
    """
    if not condition:
        raise AssertionError(message)


def mode(training: bool) -> str:
    """``training`` or ``eval``, for messages."""
    return "training" if training else "eval"


def conformance_profile(
    kind: str, entry: Mapping[str, Any] | None = None, profile_overrides: Mapping[str, Any] | None = None
) -> Profile:
    """A profile holding only one entry of ``kind``: no DAC, ADC or tiles unless overridden.

    Args:
        kind: a registered noise kind.
        entry: values for the entry's fields (``kind`` may be left out).
        profile_overrides: other profile fields, e.g. ``{"adc": {"bits": 8}, "t_inference_s": 86400}``.

    Raises:
        ProfileError: the entry or the overrides are not valid.
    """
    values = {"kind": kind, **dict(entry or {})}
    if values["kind"] != kind:
        raise ValueError(f"the entry is of kind '{values['kind']}', not '{kind}'")
    overrides = dict(profile_overrides or {})
    if "noise" in overrides:
        raise ValueError("profile_overrides cannot hold 'noise': pass the entry's values as `entry`")
    data = {
        "name": "conformance",
        "technology": "generic",
        "description": f"Only the noise kind {kind}, as the conformance kit checks it.",
        **overrides,
        "noise": [values],
    }
    return parse_profile(data, source=f"conformance profile of '{kind}'")


class _SelfAttention(nn.Module):
    """Self-attention as a one-input model (the kit's models take one tensor)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


class _Recurrent(nn.Module):
    """A recurrent layer's output sequence as a one-input model."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.rnn = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


# Options of to_noisy per test model: attention's products through the analog path too.
_OPTIONS: dict[type[nn.Module], dict[str, Any]] = {_SelfAttention: {"analog_attention": True}}


def layers(device: torch.device, dtype: torch.dtype = torch.float32) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """One small model per kind of twin (linear, conv, transposed conv, attention,
    recurrent) with an input, seeded."""
    g = torch.Generator().manual_seed(0)
    cases = [
        ("linear", nn.Sequential(nn.Linear(FAN_IN, 8)), torch.randn(4, FAN_IN, generator=g)),
        ("conv2d", nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)), torch.randn(2, 3, 6, 6, generator=g)),
        (
            "conv_transpose2d",
            nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2)),
            torch.randn(2, 3, 4, 4, generator=g),
        ),
        ("attention", _SelfAttention(), torch.randn(2, 5, 8, generator=g)),
        ("lstm", _Recurrent(nn.LSTM(6, 8, batch_first=True)), torch.randn(2, 4, 6, generator=g)),
    ]
    for _, model, _ in cases:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return [(name, model.to(device, dtype), x.to(device, dtype)) for name, model, x in cases]


def converted(
    case: Case, model: nn.Module, *, seed: int = 0, training: bool = False, profile: Profile | None = None
) -> nn.Module:
    """``model`` converted to the case's profile (or ``profile``), programmed with ``seed``, in the given mode."""
    noisy = to_noisy(model, profile or case.profile, **_OPTIONS.get(type(model), {}))
    program(noisy, seed=seed)
    return noisy.train(training)


def chips(noisy: nn.Module) -> list[torch.Tensor]:
    """The programmed weights every analog product of ``noisy`` holds (cached chips only)."""
    mvms = [m for m in noisy.modules() if isinstance(m, AnalogMVM)]
    return [m.programmed_weights for m in mvms if m.programmed_weights is not None]


def stage_input(stage: str, device: torch.device) -> torch.Tensor:
    """A seeded tensor of the kind a stage transforms, on ``device``."""
    g = torch.Generator().manual_seed(1)
    if stage in ("program", "read"):  # normalised weights, |w| <= 1, each row reaching 1
        w = torch.randn(8, FAN_IN, generator=g)
        t = w / w.abs().amax(dim=1, keepdim=True)
    elif stage == "inputs":
        t = torch.randn(4, FAN_IN, generator=g)
    elif stage == "tile_outputs":  # partial sums of a tile in normalised units
        t = 2.0 * torch.randn(4, 8, generator=g)
    else:
        t = torch.randn(4, 8, generator=g)
    return t.to(device)


def stage_context(case: Case, scale: float, seed: int) -> StageContext:
    """The context the engine would give a stage of a small tile of the case's profile, seeded."""
    p = case.profile
    rows = min(p.tile.rows, FAN_IN) if p.tile is not None else FAN_IN
    out_bound = analog.adc_bound(p.adc, rows) if p.adc is not None else float(rows)
    generator = torch.Generator(device=case.device)
    generator.manual_seed(seed)
    return StageContext(
        generator=generator,
        scale=scale,
        training=False,
        t_inference_s=p.t_inference_s,
        g_max_us=p.mapping.g_max_us,
        out_bound=out_bound,
        tile_rows=rows,
        layer="conformance",
    )


def run_stage(kind: NoiseKind, stage: str, t: torch.Tensor, ctx: StageContext) -> tuple[torch.Tensor, torch.Tensor]:
    """The stage's result on ``t`` and the output gain it sets (1 for all but ``program``)."""
    kind.check(ctx)
    if stage == "program":
        state = WeightState(target=t, g_max_us=ctx.g_max_us)
        kind.program(state, ctx)
        return state.weights(), torch.as_tensor(state.out_gain, dtype=t.dtype, device=t.device)
    return getattr(kind, stage)(t, ctx), torch.ones((), dtype=t.dtype, device=t.device)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute difference of two tensors, for messages."""
    return float((a.double() - b.double()).abs().max())
