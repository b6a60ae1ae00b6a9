"""The interface between the noise engine and a noise kind.

One analog matrix-vector product goes through these stages, in this order
(NOISE-MODELS section 6); every kind implements the stages it names in
``stages`` and the engine calls only those:

``inputs``
    on the layer input, in activation units, before the DAC.
(DAC)
    clip to the input bound, quantise; inputs are now normalised, ``|x| <= 1``.
``program``
    on the weights as programmed into one chip instance: programming noise, drift
    to ``t_inference_s``, stuck cells, fabrication errors. Drawn once per chip
    instance (:func:`hwprofiles.program`) and held until the next one; drawn afresh
    on every step in training mode. Acts on a :class:`WeightState` (normalised
    weights ``w / w_max`` and, for conductance-based kinds, the device pair).
``read``
    on the normalised weights of every matrix product (per-read weight noise).
(product per tile)
    inputs split into tiles of at most ``tile.rows`` rows; each tile gives partial sums.
``tile_outputs``
    on each tile's partial sums, normalised units, before the ADC (output noise,
    detector noise, column noise).
(ADC, digital sum over tiles, scale back to activation units, bias)
``outputs``
    on the layer output in activation units (the seed study's abstract models);
    with ``placement: every_layer`` also after the input and every other layer.

Every magnitude is multiplied by ``ctx.scale`` (the profile's ``noise_scale``);
a kind at scale 0 must return its input unchanged. Gradients: the engine applies
``program`` and ``read`` without autograd and adds their change to the weights
(straight-through); ``inputs``, ``tile_outputs`` and ``outputs`` run under
autograd, so compute noise magnitudes from detached values and add or multiply
the noise (identity-plus-noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

import torch

from hwprofiles.entries.base import NoiseEntry
from hwprofiles.noise import rng

Stage = Literal["inputs", "program", "read", "tile_outputs", "outputs"]
STAGES: tuple[Stage, ...] = ("inputs", "program", "read", "tile_outputs", "outputs")
"""The stages a noise kind can act in, in the order the engine runs them (this module's docstring)."""


def reusable(noise: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether the result of combining ``y`` with freshly drawn ``noise`` may be written into
    ``noise``'s memory: without autograd, and when shapes and dtypes match. Skipping the
    allocation of a new activation-sized tensor per layer makes inference with noise about
    twice as fast on CPU (fresh large allocations fault in their pages)."""
    return not (torch.is_grad_enabled() and y.requires_grad) and noise.shape == y.shape and noise.dtype == y.dtype


def add_scaled(y: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``y + sigma * noise``, rounded as ``y + (noise * sigma)`` (the order
    :meth:`StageContext.add_noise` computes in one pass). ``noise`` must be a fresh draw: it
    may be overwritten with the result."""
    if isinstance(sigma, torch.Tensor):
        return torch.addcmul(y, sigma, noise, out=noise if reusable(noise, y) else None)
    if reusable(noise, y):
        return noise.mul_(sigma).add_(y)
    return y + noise * sigma


def scale_by_noise(y: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """``y * (1 + sigma * noise)``, rounded as ``y + y * (noise * sigma)`` like
    :meth:`StageContext.scale_noise` (into ``noise``'s memory when :func:`reusable`; ``noise``
    must be a fresh draw)."""
    if isinstance(sigma, torch.Tensor):
        return torch.addcmul(y, y * sigma, noise, out=noise if reusable(noise, y) else None)
    if reusable(noise, y):
        return noise.mul_(sigma).mul_(y).add_(y)
    return y + y * (noise * sigma)


@dataclass
class StageContext:
    """What a stage may need to know beyond the tensor it transforms.

    Attributes:
        generator: the seeded generator to draw from (static or per-read stream).
        scale: the profile's noise_scale; multiply every magnitude by it.
        training: whether the model is in training mode.
        t_inference_s: time between programming and this inference, in s.
        g_max_us: conductance of the largest weight, in uS.
        out_bound: the ADC's output bound in normalised units (the tile's rows if no ADC).
        tile_rows: rows of one tile (the full scale of a column, normalised units).
        layer: qualified name of the layer, for error messages.
    """

    generator: torch.Generator
    scale: float
    training: bool = False
    t_inference_s: float = 1.0
    g_max_us: float = 25.0
    out_bound: float = 1.0
    tile_rows: int = 1
    layer: str = ""

    def randn(self, shape: torch.Size | tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Standard normal draws of ``shape`` on ``like``'s device and dtype (on CPU from the
        engine's counter-based generator, see :mod:`hwprofiles.noise.rng`)."""
        return rng.randn(shape, self.generator, device=like.device, dtype=like.dtype)

    def add_noise(self, y: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``y + sigma * z`` for fresh standard normals ``z`` of ``y``'s shape: the numbers of
        ``add_scaled(y, self.randn(y.shape, like=y), sigma)``, drawn and added in one pass over
        memory where it can (see :func:`hwprofiles.noise.rng.add_normal`)."""
        if not isinstance(sigma, torch.Tensor) and rng.fusable(y):
            return rng.add_normal(y, sigma, self.generator, multiplicative=False)
        return add_scaled(y, self.randn(y.shape, like=y), sigma)  # into the draw's memory where it may

    def scale_noise(self, y: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
        """``y * (1 + sigma * z)`` for fresh standard normals ``z`` of ``y``'s shape, rounded as
        ``y + y * (z * sigma)``; in one pass where it can, like :meth:`add_noise`."""
        if not isinstance(sigma, torch.Tensor) and rng.fusable(y):
            return rng.add_normal(y, sigma, self.generator, multiplicative=True)
        return scale_by_noise(y, self.randn(y.shape, like=y), sigma)

    def truncated_randn(self, shape: torch.Size | tuple[int, ...], like: torch.Tensor, bound: float) -> torch.Tensor:
        """Standard normal draws of ``shape`` truncated to ``[-bound, bound]`` (draws beyond
        are redrawn, in effect: sampled by inverse CDF), on ``like``'s device and dtype."""
        return rng.truncated_randn(shape, self.generator, bound, device=like.device, dtype=like.dtype)

    def rand(self, shape: torch.Size | tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """Uniform [0, 1) draws of ``shape`` on ``like``'s device and dtype."""
        return torch.rand(shape, generator=self.generator, device=like.device, dtype=like.dtype)


@dataclass
class WeightState:
    """Weights of one layer while a chip instance is programmed.

    Kinds that model single devices work on the conductance pair
    (:meth:`conductances`, in uS; the positive part of a weight on one device, the
    negative part on the other, the idle device at 0 uS). Kinds that model the
    weight itself (e.g. phase-encoded photonics) work on :meth:`weights`.

    Attributes:
        target: the normalised weights the chip was asked to hold, ``|w| <= 1``.
        g_max_us: conductance of a weight of magnitude 1.
        out_gain: digital gain applied to the layer's outputs after the ADC (drift compensation).
    """

    target: torch.Tensor
    g_max_us: float
    out_gain: torch.Tensor | float = 1.0
    _w: torch.Tensor | None = None
    _pair: tuple[torch.Tensor, torch.Tensor] | None = None

    def weights(self) -> torch.Tensor:
        """The current normalised weights."""
        if self._pair is not None:
            g_pos, g_neg = self._pair
            return (g_pos - g_neg) / self.g_max_us
        return self.target if self._w is None else self._w

    def set_weights(self, w: torch.Tensor) -> None:
        """Replace the normalised weights (the conductances are derived again when asked for)."""
        self._w, self._pair = w, None

    def conductances(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (positive, negative) device conductances, in uS."""
        if self._pair is None:
            w = self.weights()
            g = w.abs() * self.g_max_us
            zero = torch.zeros_like(g)
            self._pair = (torch.where(w > 0, g, zero), torch.where(w < 0, g, zero))
        return self._pair

    def set_conductances(self, g_pos: torch.Tensor, g_neg: torch.Tensor) -> None:
        """Replace the (positive, negative) device conductances, in uS."""
        self._pair, self._w = (g_pos, g_neg), None

    def target_conductances(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The conductances the devices were programmed towards, in uS (noise-free)."""
        g = self.target.abs() * self.g_max_us
        zero = torch.zeros_like(g)
        return torch.where(self.target > 0, g, zero), torch.where(self.target < 0, g, zero)


E = TypeVar("E", bound=NoiseEntry)


class NoiseKind(Generic[E]):
    """Base class of a noise kind's implementation.

    One instance is made per layer (or noise site) from the profile entry. Set
    ``stages`` to the stages you implement and override those methods; the
    engine calls nothing else. ``static`` stages (``program``) are held per chip
    instance; the others are drawn on every forward.

    Parametrise it with the kind's entry model, so that ``self.entry`` has that
    type (``class MyNoise(NoiseKind[MyEntry])``); a bare ``NoiseKind`` subclass
    works too, with ``self.entry`` untyped.

    Args:
        entry: the validated profile entry (an instance of the kind's entry model).
        profile: the whole profile, for peripheral settings. It is typed loosely
            because noise kinds sit below the profile schema (which imports the
            registry of kinds); no built-in kind reads it.
    """

    stages: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, entry: E, profile: Any) -> None:
        self.entry = entry
        self.profile = profile

    def check(self, ctx: StageContext) -> None:
        """Raise :class:`hwprofiles.NoiseConfigError` if the kind cannot act under ``ctx``
        (called when a chip instance is programmed)."""

    def inputs(self, x: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        """Transform a layer input (activation units)."""
        raise NotImplementedError

    def program(self, state: WeightState, ctx: StageContext) -> None:
        """Apply static device effects to ``state`` (in place)."""
        raise NotImplementedError

    def read(self, w: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        """Return the normalised weights as read by one matrix product."""
        raise NotImplementedError

    def tile_outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        """Return one tile's partial sums (normalised units) with noise."""
        raise NotImplementedError

    def outputs(self, y: torch.Tensor, ctx: StageContext) -> torch.Tensor:
        """Return a layer output (activation units) with noise."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.entry!r})"
