"""Quantization-aware training (QAT): the seed study's fixed-scale baseline, and LSQ.

``to_qat`` swaps ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` for twins whose
weights are fake-quantized, and ``nn.ReLU`` / ``nn.ReLU6`` for twins whose outputs
are; ``from_qat`` gives the float model back. Like the noisy twins, a QAT twin
subclasses its float layer and shares its parameters, so the float weights are
what the optimizer trains and what ``from_qat`` returns.

- **Weights**: signed int-b, narrow range ``[-(2^(b-1)-1), 2^(b-1)-1]``, so zero is
  a level and the range is symmetric. The step is ``max|w| / (2^(b-1)-1)``, per
  output channel for convolutions and per tensor for linear layers, taken from the
  current weights on every forward (and not differentiated through).
- **Activations**: only ReLU outputs, as unsigned int-b with a *constant* step
  ``act_scale``: levels ``0, act_scale, ..., act_scale * (2^b - 1)``, saturating
  above. A fixed step stops training from shrinking activations relative to an
  absolute noise level, which is why the study sweeps it instead of learning it.
- **Everything else** (BatchNorm, pooling, the input) stays float.
- **Learned scales** (``learned=True``, LSQ, Esser et al. 2020): the activation
  step and the weight steps become parameters, trained with torch's learnable
  fake-quantize ops and LSQ's gradient scale ``1 / sqrt(numel * qmax)``.

Gradients pass by the straight-through estimator: unchanged where a value lies
inside the quantization range, zero where it was clipped.

Only ReLU *modules* are seen: a ``F.relu`` / ``torch.relu`` called inside some
``forward`` is invisible to module swapping, and its output stays float. Such a
model needs ``nn.ReLU`` modules instead.

    >>> import torch, torch.nn as nn, hwprofiles
    >>> model = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    >>> qat = hwprofiles.to_qat(model, bits=4, act_scale=0.5)
    >>> out = qat(torch.randn(3, 8))
    >>> float_again = hwprofiles.from_qat(qat)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwprofiles.nn import analog
from hwprofiles.nn.swap import TwinMixin, excluded, model_device, swap_modules

BITS_RANGE = (2, 16)
"""Bit widths accepted. Above 16, unsigned levels (``2^b - 1``) stop being exact in float32."""

# Lower bound of a learned step, as torch's own learnable fake-quantizer keeps it:
# a step at or below zero would collapse (or flip) every level.
_MIN_LEARNED_SCALE = torch.finfo(torch.float32).eps
# Lower bound of a weight step taken from max|w|: only an all-zero (or denormal)
# channel reaches it, and its weights then stay zero instead of dividing by zero.
_MIN_WEIGHT_SCALE = torch.finfo(torch.float32).tiny

_Qat = TypeVar("_Qat", bound="QatMixin")


@dataclass(frozen=True)
class QatConfig:
    """How a model is fake-quantized.

    Attributes:
        bits: bit width b of weights and activations.
        act_scale: the step between activation levels (the initial value when learned).
        learned: whether the steps are trained parameters (LSQ) or fixed.
    """

    bits: int = 8
    act_scale: float = 1.0
    learned: bool = False

    def __post_init__(self) -> None:
        lo, hi = BITS_RANGE
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not lo <= self.bits <= hi:
            raise ValueError(f"bits must be an integer from {lo} to {hi}, got {self.bits!r}")
        if not (isinstance(self.act_scale, (int, float)) and math.isfinite(self.act_scale) and self.act_scale > 0):
            raise ValueError(f"act_scale must be a finite number > 0, got {self.act_scale!r}")

    @property
    def weight_qmax(self) -> int:
        """Largest weight level, ``2^(b-1) - 1`` (narrow range: the levels are ``-qmax .. qmax``)."""
        return 2 ** (self.bits - 1) - 1

    @property
    def act_qmax(self) -> int:
        """Largest activation level, ``2^b - 1`` (the levels are ``0 .. qmax``)."""
        return 2**self.bits - 1


def _lsq_grad_factor(x: torch.Tensor, qmax: int) -> float:
    # LSQ's step-size gradient scale; numel of the whole tensor, as torch's
    # _LearnableFakeQuantize computes it.
    return 1.0 / math.sqrt(x.numel() * qmax)


def _positive(scale: torch.Tensor) -> torch.Tensor:
    """``scale`` kept above a small bound, with the gradient passed straight through.

    Clamping the parameter in place (as torch's learnable fake-quantizer does) would
    break backward when one module runs twice in a forward, as a shared ReLU does;
    a plain clamp would stop the gradient once the bound is reached.
    """
    return scale + (scale.clamp(min=_MIN_LEARNED_SCALE) - scale).detach()


class QatMixin(TwinMixin):
    """What every QAT twin shares: its config, and the way to and from its float layer."""

    _scale_name: ClassVar[str]
    _twin_attrs = ("qat_config",)
    qat_config: QatConfig

    @classmethod
    def from_float(
        cls: type[_Qat], module: nn.Module, config: QatConfig, *, device: torch.device | None = None
    ) -> _Qat:
        """The twin of ``module``, sharing its parameters, buffers and hooks.

        Args:
            module: a layer of exactly ``cls``'s float type.
            config: bits and scales.
            device: where a learned scale goes when the layer has no parameters of its own.
        """
        twin = cls.share(module)
        twin.qat_config = config
        if config.learned:
            twin.register_parameter(cls._scale_name, nn.Parameter(twin._initial_scale(device)))
        return twin

    def _initial_scale(self, device: torch.device | None) -> torch.Tensor:
        raise NotImplementedError

    def twin_parts(self) -> list[str]:
        """The learned scale, when there is one (dropped by ``to_float``)."""
        return [self._scale_name]

    def extra_repr(self) -> str:
        c = self.qat_config
        own = f"bits={c.bits}, learned={c.learned}"
        if self._scale_name == "act_scale" and not c.learned:
            own += f", act_scale={c.act_scale:g}"
        base = super().extra_repr()
        return f"{base}, {own}" if base else own


# -- weights ---------------------------------------------------------------------------


class _QatWeightMixin(QatMixin):
    _scale_name = "weight_scale"
    _per_channel: ClassVar[bool]
    weight: torch.Tensor

    def _max_abs(self) -> torch.Tensor:
        w = self.weight.detach()
        return w.abs().flatten(1).amax(dim=1) if self._per_channel else w.abs().amax().reshape(1)

    def _initial_scale(self, device: torch.device | None) -> torch.Tensor:
        scale = (self._max_abs() / self.qat_config.weight_qmax).float()
        return scale.clamp(min=_MIN_LEARNED_SCALE)

    def weight_step(self) -> torch.Tensor:
        """The step between weight levels: one per output channel (conv) or one (linear)."""
        if self.qat_config.learned:
            return _positive(getattr(self, self._scale_name))
        # torch's per-channel op takes float32 (or bfloat16) steps only.
        return (self._max_abs() / self.qat_config.weight_qmax).float().clamp(min=_MIN_WEIGHT_SCALE)

    def quantized_weight(self) -> torch.Tensor:
        """The weight as the forward uses it: fake-quantized to int-b, differentiable by STE."""
        c = self.qat_config
        w, q = self.weight, c.weight_qmax
        scale = self.weight_step()
        if c.learned:
            zero = torch.zeros_like(scale)
            g = _lsq_grad_factor(w, q)
            if self._per_channel:
                return torch._fake_quantize_learnable_per_channel_affine(w, scale, zero, 0, -q, q, g)
            return torch._fake_quantize_learnable_per_tensor_affine(w, scale, zero, -q, q, g)
        if self._per_channel:
            zero_i = torch.zeros(scale.shape, dtype=torch.int32, device=scale.device)
            return torch.fake_quantize_per_channel_affine(w, scale, zero_i, 0, -q, q)
        # The tensor-argument overload: no .item(), so no device sync each forward.
        zero_i = torch.zeros((), dtype=torch.int32, device=scale.device)
        return torch.fake_quantize_per_tensor_affine(w, scale[0], zero_i, -q, q)


class QatLinear(_QatWeightMixin, nn.Linear):
    """``nn.Linear`` with int-b weights, one step per tensor."""

    _per_channel = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)


class _QatConvNd(_QatWeightMixin, nn.modules.conv._ConvNd):
    _per_channel = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.quantized_weight(), self.bias)


class QatConv1d(_QatConvNd, nn.Conv1d):
    """``nn.Conv1d`` with int-b weights, one step per output channel."""


class QatConv2d(_QatConvNd, nn.Conv2d):
    """``nn.Conv2d`` with int-b weights, one step per output channel."""


# -- activations -----------------------------------------------------------------------


class _QatActMixin(QatMixin):
    _scale_name = "act_scale"
    act_scale: torch.Tensor  # a parameter, when learned

    def _initial_scale(self, device: torch.device | None) -> torch.Tensor:
        return torch.tensor([float(self.qat_config.act_scale)], dtype=torch.float32, device=device)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` (non-negative) fake-quantized to ``0, step, ..., step * (2^b - 1)``."""
        c = self.qat_config
        q = c.act_qmax
        if c.learned:
            scale = _positive(self.act_scale)
            return torch._fake_quantize_learnable_per_tensor_affine(
                y, scale, torch.zeros_like(scale), 0, q, _lsq_grad_factor(y, q)
            )
        return analog.fake_quantize(y, float(c.act_scale), 0, q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.quantize(super().forward(x))


class QatReLU(_QatActMixin, nn.ReLU):
    """``nn.ReLU`` whose output is unsigned int-b with step ``act_scale``."""


class QatReLU6(_QatActMixin, nn.ReLU6):
    """``nn.ReLU6`` whose output is unsigned int-b with step ``act_scale`` (after the clip at 6)."""


DEFAULT_QAT: dict[type[nn.Module], type[QatMixin]] = {
    nn.Linear: QatLinear,
    nn.Conv1d: QatConv1d,
    nn.Conv2d: QatConv2d,
    nn.ReLU: QatReLU,
    nn.ReLU6: QatReLU6,
}


# -- converters ------------------------------------------------------------------------


def to_qat(
    model: nn.Module,
    *,
    bits: int = 8,
    act_scale: float = 1.0,
    learned: bool = False,
    inplace: bool = False,
    exclude: Iterable[str] = (),
    mapping: dict[type[nn.Module], type[QatMixin]] | None = None,
) -> nn.Module:
    """The fake-quantized twin of ``model``, for quantization-aware training.

    Swaps (exact types only: a subclass may compute something else) ``nn.Linear``,
    ``nn.Conv1d`` and ``nn.Conv2d`` for twins with int-b weights (symmetric, narrow
    range, step ``max|w| / (2^(b-1) - 1)`` per output channel for convolutions, per
    tensor for linear layers), and ``nn.ReLU`` / ``nn.ReLU6`` for twins whose
    outputs are unsigned int-b with a constant step ``act_scale``. BatchNorm and all
    other layers stay float; so do functional relus (``F.relu`` in a ``forward``),
    which module swapping cannot see. Twins share the float parameters.

    With ``learned=True`` the steps are parameters (LSQ): the activation step starts
    at ``act_scale``, the weight steps at ``max|w| / (2^(b-1) - 1)``, and the
    state dict gains ``*.weight_scale`` and ``*.act_scale`` entries. One ReLU module
    used at several places in a forward has one step for all of them: a module
    registered under several names becomes one twin under all of them (see
    :mod:`hwprofiles.nn.swap`).

    Args:
        model: the float model.
        bits: bit width b of weights and activations (2 to 16; the study sweeps 4, 8, 16).
        act_scale: the step between activation levels (initial step when ``learned``).
        learned: train the steps (LSQ) instead of fixing them.
        inplace: convert ``model`` itself instead of a deep copy.
        exclude: qualified module names (and their children) left float; a module
            registered under several names is matched by its first.
        mapping: ``{float type: twin type}`` entries added to (or overriding)
            :data:`DEFAULT_QAT`; a twin type subclasses :class:`QatMixin`.

    Returns:
        The converted model.

    Raises:
        ValueError: ``bits`` or ``act_scale`` out of range.
        TypeError: ``model`` is itself a swappable layer (wrap it in ``nn.Sequential``).

    >>> import torch.nn as nn, hwprofiles
    >>> model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    >>> qat = hwprofiles.to_qat(model, bits=4, act_scale=0.25)
    >>> [type(m).__name__ for m in qat]
    ['QatConv2d', 'BatchNorm2d', 'QatReLU']
    """
    config = QatConfig(bits=bits, act_scale=float(act_scale), learned=learned)
    twins = {**DEFAULT_QAT, **(mapping or {})}
    exclude = frozenset(exclude)
    if type(model) in twins and "" not in exclude:
        raise TypeError("to_qat needs a model that contains layers, not a bare layer; wrap it in nn.Sequential")
    if not inplace:
        model = copy.deepcopy(model)
    device = model_device(model)

    def convert(name: str, module: nn.Module) -> nn.Module | None:
        twin_type = twins.get(type(module))
        if not name or twin_type is None or excluded(name, exclude):
            return None
        return twin_type.from_float(module, config, device=device)

    return swap_modules(model, convert)


def from_qat(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The float model back: every QAT twin becomes its float layer.

    Parameters keep their values (the float weights, not their quantized form),
    layers their types, and the state dict the keys of the original float model;
    learned scales are dropped. Layers that are not QAT twins are left as they are.

    Args:
        model: a model made by :func:`to_qat`.
        inplace: convert ``model`` itself instead of a deep copy.

    Returns:
        The float model.

    Raises:
        TypeError: ``model`` is itself a QAT twin (convert the model that holds it).

    >>> import torch.nn as nn, hwprofiles
    >>> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    >>> back = hwprofiles.from_qat(hwprofiles.to_qat(model, learned=True))
    >>> list(back.state_dict()) == list(model.state_dict())
    True
    """
    if isinstance(model, QatMixin):
        raise TypeError("from_qat needs a model that contains QAT layers, not a bare layer; call .to_float() on it")
    if not inplace:
        model = copy.deepcopy(model)
    return swap_modules(model, lambda name, m: m.to_float() if isinstance(m, QatMixin) else None)


@torch.no_grad()
def bake_qat(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """The deployable form of a QAT model: float weight layers holding the quantized
    weights, activation quantizers kept.

    This is what a chip is programmed with, so :func:`hwprofiles.to_noisy` can give
    its weight layers noise (it swaps exact float types) while the ReLU outputs keep
    their constant-step quantization.

    >>> import torch.nn as nn, hwprofiles
    >>> from hwprofiles.nn.qat import bake_qat
    >>> baked = bake_qat(hwprofiles.to_qat(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), bits=4))
    >>> [type(m).__name__ for m in baked]
    ['Linear', 'QatReLU']
    >>> len(baked[0].weight.unique()) <= 15
    True
    """
    if not inplace:
        model = copy.deepcopy(model)

    def bake(name: str, module: nn.Module) -> nn.Module | None:
        if not name or not isinstance(module, _QatWeightMixin):
            return None
        quantized = module.quantized_weight().detach().clone()
        float_layer = module.to_float()
        float_layer.weight = nn.Parameter(quantized, requires_grad=module.weight.requires_grad)
        return float_layer

    return swap_modules(model, bake)
