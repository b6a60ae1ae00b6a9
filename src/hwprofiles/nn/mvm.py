"""One analog matrix product: the pipeline of NOISE-MODELS section 6, reused by every twin.

An :class:`AnalogMVM` takes the input, the weight tensor and the bias explicitly, and owns
what belongs to one product on a chip: its noise site (profile kinds and seeded streams),
its calibrated input bound (a buffer, so it is saved with the model) and its programmed
chip instance (cached until the next :func:`hwprofiles.program`). How the product itself
is computed (a linear map, a convolution, a batched matmul) is a
:class:`~hwprofiles.nn.products.Product` passed
in by the twin, so the Linear, Conv, attention and recurrent twins share one pipeline:

    inputs stage -> DAC -> programmed weights (per chip) -> read noise (per forward)
    -> product per tile -> tile noise + ADC -> digital sum, scale back, bias -> outputs stage

    >>> import torch, hwprofiles
    >>> from hwprofiles.nn.mvm import AnalogMVM
    >>> from hwprofiles.nn.products import LINEAR
    >>> from hwprofiles.nn.site import NoiseSite
    >>> mvm = AnalogMVM(NoiseSite(hwprofiles.load_profile("gaussian-additive"), "demo"))
    >>> mvm(torch.ones(2, 3), torch.eye(3), None, LINEAR).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.nn as nn

from hwprofiles.errors import NotCalibratedError
from hwprofiles.nn import analog
from hwprofiles.nn.products import BATCHED, LINEAR, BatchedProduct, LinearProduct, Product
from hwprofiles.nn.site import NoiseSite
from hwprofiles.noise.base import WeightState

_CALIBRATION_MOMENTUM = 0.1
UNCALIBRATED = 0.0  # the value of an input-bound buffer not yet set from data (bounds are >= 1e-8)
BOUND = "input_bound"  # the buffers' names in every AnalogMVM
ADC_RANGE = "adc_range"
_BOUND_KEY = re.compile(r"(^|\.)mvm[A-Za-z0-9_]*\.(input_bound|adc_range)$")


class AnalogMVM(nn.Module):
    """One analog matrix product of a twin, with its noise site, input bound and chip.

    Args:
        site: the noise site of this product (its name is the one errors give).
        dynamic: the "weights" are activations written anew on every forward (attention's
            K and V): their programmed state is never cached. In eval mode the static
            stream still gives each chip one fixed pattern of device variation.
        device: where the input-bound buffer lives (the layer's device).

    The input bound (buffer ``input_bound``, 0 until calibrated) is used only under a
    profile whose DAC has ``bound_mode: calibrated``, the ADC range (buffer ``adc_range``)
    only under one whose ADC has: set both with :func:`hwprofiles.calibrate`; in training
    mode a running estimate follows the data.
    """

    input_bound: torch.Tensor

    def __init__(self, site: NoiseSite, *, dynamic: bool = False, device: torch.device | None = None) -> None:
        super().__init__()
        self.site = site
        self.dynamic = dynamic
        # float64: bounds round-trip exactly through a state dict.
        # float64: ranges round-trip exactly through a state dict. The ADC range exists only
        # once a calibrated ADC needs it, so the state dicts of other models keep their keys.
        self.register_buffer(BOUND, torch.full((), UNCALIBRATED, dtype=torch.float64, device=device))
        self._cached: dict[str, tuple[torch.Tensor, int, float]] = {}
        self._chip: tuple[Any, torch.Tensor, torch.Tensor | float] | None = None
        self._calibrating: Literal["dac", "adc"] | None = None
        self._holding = False

    # -- the calibrated ranges ------------------------------------------------------------
    def _read(self, name: str) -> float:
        buf = getattr(self, name)
        cache = self._cached.get(name)
        # A Python copy avoids a device sync per forward; the tensor's identity and version
        # tell when load_state_dict, .to() or a user wrote the buffer since.
        if cache is None or cache[0] is not buf or cache[1] != buf._version:
            cache = (buf, buf._version, float(buf))
            self._cached[name] = cache
        return cache[2]

    def _write(self, name: str, value: float) -> None:
        if not hasattr(self, name):
            self.register_buffer(name, self.input_bound.new_full((), UNCALIBRATED))
        buf = getattr(self, name)
        with torch.no_grad():
            buf.fill_(value)
        self._cached[name] = (buf, buf._version, float(value))

    @property
    def bound(self) -> float:
        """The calibrated input bound (activation units), or 0 when not calibrated."""
        return self._read(BOUND)

    def set_bound(self, value: float) -> None:
        """Set the input bound (``UNCALIBRATED``, 0, forgets it)."""
        self._write(BOUND, value)

    @property
    def adc_bound(self) -> float:
        """The calibrated ADC range (normalised units), or 0 when not calibrated."""
        return self._read(ADC_RANGE) if hasattr(self, ADC_RANGE) else UNCALIBRATED

    def set_adc_bound(self, value: float) -> None:
        """Set the ADC range (``UNCALIBRATED``, 0, forgets it)."""
        self._write(ADC_RANGE, value)

    @property
    def calibrated(self) -> bool:
        return self.bound != UNCALIBRATED

    @contextlib.contextmanager
    def calibration(self, stage: Literal["dac", "adc"] = "dac") -> Iterator[None]:
        """Within this block every forward raises the ``stage``'s range (the DAC's input bound,
        or the ADC's range) to the largest percentile seen, starting afresh (what
        :func:`hwprofiles.calibrate` runs, DAC first); while the DAC is calibrated, a
        calibrated ADC spans its full bound."""
        self._calibrating = stage
        self._seen = UNCALIBRATED
        try:
            yield
        finally:
            self._calibrating = None
            del self._seen

    def _record(self, x: torch.Tensor) -> None:
        spec = self.site.profile.dac
        if spec is not None and spec.bound_mode == "calibrated":
            self._seen = max(self._seen, analog.percentile_abs(x, spec.calibration_percentile))
            self.set_bound(self._seen)

    def _input_bound(self, x: torch.Tensor) -> float:
        spec = self.site.profile.dac
        assert spec is not None
        if spec.bound_mode == "fixed":
            return spec.bound
        bound = self.bound
        if self.training and self._calibrating is None:
            measured = analog.percentile_abs(x, spec.calibration_percentile)
            # a running estimate, as BatchNorm keeps its statistics
            bound = measured if bound == UNCALIBRATED else bound + _CALIBRATION_MOMENTUM * (measured - bound)
            self.set_bound(bound)
        elif bound == UNCALIBRATED:
            raise NotCalibratedError(
                f"layer '{self.site.name}' has a calibrated DAC (profile '{self.site.profile.name}', "
                "dac.bound_mode: calibrated) but its input bound was never set from data, so every output "
                "would depend on whatever batch came first. Calibrate once before evaluating: "
                "hwprofiles.calibrate(model, training_batches) with a few batches of training inputs, "
                "or hwprofiles.to_noisy(model, profile, calibration=training_batches)."
            )
        return bound

    def _load_from_state_dict(
        self,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        if prefix + ADC_RANGE in state_dict:
            self._write(ADC_RANGE, UNCALIBRATED)  # the buffer to load it into
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        for name in (BOUND, ADC_RANGE):
            key = prefix + name
            if key not in state_dict and hasattr(self, name):
                # A float checkpoint, or one saved before ranges were saved: loads, and the
                # range is forgotten (it belonged to other weights).
                if key in missing_keys:
                    missing_keys.remove(key)
                self._write(name, UNCALIBRATED)

    # -- the chip ------------------------------------------------------------------------
    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep one programmed chip for every product in the block, in training mode too
        (a recurrent layer's steps all run on the chip drawn for that forward)."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            if self.training:
                self._chip = None

    def reset(self) -> None:
        """Forget the cached chip instance (it is drawn again from the seed when needed)."""
        self._chip = None

    @property
    def programmed_weights(self) -> torch.Tensor | None:
        """The (normalised) programmed weights of the cached chip instance, or ``None``
        before a forward has drawn one (or where every forward draws afresh)."""
        return self._chip[1] if self._chip is not None else None

    def _chip_weights(self, w_n: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """The programmed weights of the current chip instance (normalised) and output gain."""
        site = self.site
        cache = not self.dynamic and (not self.training or self._holding)
        key = (site.chip_version, weight._version, weight.data_ptr(), w_n.device, w_n.dtype, w_n.shape)
        if cache and self._chip is not None and self._chip[0] == key:
            return self._chip[1], self._chip[2]
        stream = "read" if self.training else "static"  # training: a new chip every step
        ctx = site.context(stream, w_n, self.training)
        state = WeightState(target=w_n, g_max_us=ctx.g_max_us)
        for kind in site.by_stage["program"]:
            kind.check(ctx)
            kind.program(state, ctx)
        programmed, gain = state.weights(), state.out_gain
        if cache:
            self._chip = (key, programmed, gain)
        return programmed, gain

    def _weights(
        self, weight: torch.Tensor, product: Product
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]:
        """Normalised weights as one product reads them, w_max, and output gain."""
        site = self.site
        w_max = product.weight_max(weight.detach(), site.profile.mapping.scale == "per_channel")
        w_n = weight / w_max
        gain: torch.Tensor | float = 1.0
        if site.has("program") or site.has("read"):
            with torch.no_grad():
                w_read = w_n.detach()
                if site.has("program"):
                    w_read, gain = self._chip_weights(w_read, weight)
                if site.has("read"):
                    ctx = site.context("read", w_read, self.training)
                    for kind in site.by_stage["read"]:
                        w_read = kind.read(w_read, ctx)
                delta = w_read - w_n.detach()
            w_n = w_n + delta  # straight-through: the gradient reaches the float weights unchanged
        return w_n, w_max, gain

    # -- the product ---------------------------------------------------------------------
    def is_analog(self) -> bool:
        """Whether the product goes through the analog path (DAC, ADC or weight noise)."""
        p = self.site.profile
        site = self.site
        return (
            p.dac is not None
            or p.adc is not None
            or site.has("program")
            or site.has("read")
            or site.has("tile_outputs")
        )

    def acts(self) -> bool:
        """Whether this product differs from the float one at all."""
        return self.is_analog() or self.site.has("inputs") or self.site.has("outputs")

    def tiles(self, weight: torch.Tensor, product: Product) -> int:
        p = self.site.profile
        if p.tile is None or not (p.adc is not None or self.site.has("tile_outputs")):
            return 1  # without per-tile noise or ADC, splitting changes nothing
        return product.tiles(weight, p.tile.rows)

    def _tile_stages(self, y: torch.Tensor, rows: int) -> torch.Tensor:
        site = self.site
        p = site.profile
        # A column's full scale: the rows the layer actually occupies in one tile.
        out_bound = analog.adc_bound(p.adc, rows) if p.adc is not None else float(rows)
        if site.has("tile_outputs"):
            ctx = site.context("read", y, self.training, out_bound=out_bound, tile_rows=rows)
            for kind in site.by_stage["tile_outputs"]:
                y = kind.tile_outputs(y, ctx)
        if p.adc is not None:
            y = analog.adc(y, p.adc, self._adc_range(y, out_bound))
        return y

    def _adc_range(self, y: torch.Tensor, full: float) -> float:
        """The range the ADC quantises over: its full bound, or the calibrated range (never above it)."""
        spec = self.site.profile.adc
        assert spec is not None
        if spec.bound_mode == "fixed" or self._calibrating == "dac":
            return full
        if self._calibrating == "adc":
            self._seen = max(self._seen, analog.percentile_abs(y, spec.calibration_percentile))
            self.set_adc_bound(min(self._seen, full))
        elif self.training:
            measured = min(analog.percentile_abs(y, spec.calibration_percentile), full)
            current = self.adc_bound
            self.set_adc_bound(
                measured if current == UNCALIBRATED else current + _CALIBRATION_MOMENTUM * (measured - current)
            )
        elif self.adc_bound == UNCALIBRATED:
            raise NotCalibratedError(
                f"layer '{self.site.name}' has a calibrated ADC (profile '{self.site.profile.name}', "
                "adc.bound_mode: calibrated) but its range was never set from data. Calibrate once before "
                "evaluating: hwprofiles.calibrate(model, training_batches) with a few batches of training "
                "inputs, or hwprofiles.to_noisy(model, profile, calibration=training_batches)."
            )
        return self.adc_bound

    def forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, product: Product
    ) -> torch.Tensor:
        """``product`` of ``x`` and ``weight`` (plus ``bias``) as the chip computes it."""
        if self._calibrating == "dac":
            self._record(x)
        site = self.site
        if site.has("inputs"):
            ctx = site.context("read", x, self.training)
            for kind in site.by_stage["inputs"]:
                x = kind.inputs(x, ctx)
        if self.is_analog():
            y = self._analog_forward(x, weight, bias, product)
        else:
            y = product.float(x, weight, bias)
        return site.apply_outputs(y, self.training)

    def _analog_forward(
        self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, product: Product
    ) -> torch.Tensor:
        p = self.site.profile
        in_bound = 1.0
        if p.dac is not None:
            in_bound = self._input_bound(x)
            x = analog.dac(x, p.dac, in_bound)
        w_n, w_max, gain = self._weights(weight, product)
        tiles = self.tiles(weight, product)
        rows = product.rows_per_tile(weight, tiles)
        # x / in_bound is the normalised input; dividing the (small) weight tensor
        # instead saves a pass over the activations and gives the same product.
        y = product.tiled(x, w_n / in_bound, tiles, lambda t, _: self._tile_stages(t, rows))
        scale = product.scale_view(w_max, y) * (in_bound * gain)
        if bias is None:
            return y * scale
        return torch.addcmul(product.bias_view(bias, y), y, scale)  # bias + y * scale

    def extra_repr(self) -> str:
        return f"site={self.site.name!r}, dynamic={self.dynamic}" if self.dynamic else f"site={self.site.name!r}"


def is_calibration_key(key: str) -> bool:
    """Whether a state-dict key is an analog product's input bound or ADC range (absent from float models)."""
    return bool(_BOUND_KEY.search(key))


def strip_calibration(state_dict: dict[str, Any]) -> dict[str, Any]:
    """``state_dict`` without the input bounds of analog products, ready for the float model.

    >>> strip_calibration({"0.weight": 1, "0.mvm.input_bound": 2, "0.mvm.adc_range": 3})
    {'0.weight': 1}
    """
    return {k: v for k, v in state_dict.items() if not is_calibration_key(k)}


__all__ = [
    "BATCHED",
    "LINEAR",
    "AnalogMVM",
    "BatchedProduct",
    "LinearProduct",
    "Product",
    "is_calibration_key",
    "strip_calibration",
]
