"""Noisy twins of ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d``.

A twin subclasses its float layer, keeps its parameters (same names, same
state-dict keys) and changes only what ``forward`` does to inputs, weights and
outputs. Build one with ``from_float`` and go back with ``to_float``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwprofiles.nn import analog
from hwprofiles.nn.site import NoiseSite
from hwprofiles.noise.base import WeightState

_CALIBRATION_MOMENTUM = 0.1


class NoisyLayerMixin:
    """The noisy forward shared by every twin. Subclasses define the product itself."""

    noise_site: NoiseSite
    weight: nn.Parameter
    bias: nn.Parameter | None
    training: bool

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_float(cls, module: nn.Module, site: NoiseSite) -> nn.Module:
        """The twin of ``module``, sharing its parameters, buffers and hooks."""
        twin = cls.__new__(cls)
        twin.__dict__ = module.__dict__.copy()  # shares parameters, buffers and hook dicts
        twin._init_noise(site)
        return twin

    def _init_noise(self, site: NoiseSite) -> None:
        self.noise_site = site
        self.input_bound: float | None = None
        self._chip: tuple[Any, torch.Tensor, torch.Tensor | float] | None = None

    def to_float(self) -> nn.Module:
        """The float layer back, with the same parameters, buffers and hooks."""
        base = self._float_type  # type: ignore[attr-defined]
        module = base.__new__(base)
        module.__dict__ = {k: v for k, v in self.__dict__.items() if k not in ("noise_site", "input_bound", "_chip")}
        return module

    # -- pieces ----------------------------------------------------------------------
    @property
    def _fan_in(self) -> int:
        return self.weight[0].numel()

    def _is_analog(self) -> bool:
        p = self.noise_site.profile
        site = self.noise_site
        return (
            p.dac is not None
            or p.adc is not None
            or site.has("program")
            or site.has("read")
            or site.has("tile_outputs")
        )

    def _input_bound(self, x: torch.Tensor) -> float:
        spec = self.noise_site.profile.dac
        assert spec is not None
        if spec.bound_mode == "fixed":
            return spec.bound
        if self.input_bound is None or self.training:
            measured = analog.percentile_abs(x, spec.calibration_percentile)
            if self.input_bound is None:
                self.input_bound = measured
            else:  # a running estimate, as BatchNorm keeps its statistics
                self.input_bound += _CALIBRATION_MOMENTUM * (measured - self.input_bound)
        return self.input_bound

    def _chip_weights(self, w_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        """The programmed weights of the current chip instance (normalised) and output gain."""
        site = self.noise_site
        key = (site.chip_version, self.weight._version, w_n.device, w_n.dtype, w_n.shape)
        if not self.training and self._chip is not None and self._chip[0] == key:
            return self._chip[1], self._chip[2]
        stream = "read" if self.training else "static"  # training: a new chip every step
        ctx = site.context(stream, w_n, self.training)
        state = WeightState(target=w_n, g_max_us=ctx.g_max_us)
        for kind in site.by_stage["program"]:
            kind.check(ctx)
            kind.program(state, ctx)
        programmed, gain = state.weights(), state.out_gain
        if not self.training:
            self._chip = (key, programmed, gain)
        return programmed, gain

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | float]:
        """Normalised weights as one matrix product reads them, w_max, and output gain."""
        site = self.noise_site
        w_max = analog.weight_max(self.weight.detach(), site.profile.mapping.scale == "per_channel")
        w_n = self.weight / w_max
        gain: torch.Tensor | float = 1.0
        if site.has("program") or site.has("read"):
            with torch.no_grad():
                w_read = w_n.detach()
                if site.has("program"):
                    w_read, gain = self._chip_weights(w_read)
                if site.has("read"):
                    ctx = site.context("read", w_read, self.training)
                    for kind in site.by_stage["read"]:
                        w_read = kind.read(w_read, ctx)
                delta = w_read - w_n.detach()
            w_n = w_n + delta  # straight-through: the gradient reaches the float weights unchanged
        return w_n, w_max, gain

    def _rows_per_tile(self, tiles: int) -> int:
        """Rows the layer occupies in one tile when its inputs are split evenly into ``tiles``."""
        return math.ceil(self._fan_in / tiles)

    def _tile_stages(self, y: torch.Tensor, tiles: int) -> torch.Tensor:
        site = self.noise_site
        p = site.profile
        # A column's full scale: the rows the layer actually occupies in one tile.
        rows = self._rows_per_tile(tiles)
        out_bound = analog.adc_bound(p.adc, rows) if p.adc is not None else float(rows)
        if site.has("tile_outputs"):
            ctx = site.context("read", y, self.training, out_bound=out_bound, tile_rows=rows)
            for kind in site.by_stage["tile_outputs"]:
                y = kind.tile_outputs(y, ctx)
        if p.adc is not None:
            y = analog.adc(y, p.adc, out_bound)
        return y

    def _tiles(self) -> int:
        p = self.noise_site.profile
        if p.tile is None or not (p.adc is not None or self.noise_site.has("tile_outputs")):
            return 1  # without per-tile noise or ADC, splitting changes nothing
        return analog.n_tiles(self._fan_in, p.tile.rows)

    # -- forward ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        site = self.noise_site
        if site.has("inputs"):
            ctx = site.context("read", x, self.training)
            for kind in site.by_stage["inputs"]:
                x = kind.inputs(x, ctx)
        if self._is_analog():
            y = self._analog_forward(x)
        else:
            y = self._float_forward(x, self.weight, self.bias)
        return site.apply_outputs(y, self.training)

    def _analog_forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.noise_site.profile
        in_bound = 1.0
        if p.dac is not None:
            in_bound = self._input_bound(x)
            x = analog.dac(x, p.dac, in_bound)
        w_n, w_max, gain = self._weights()
        # x / in_bound is the normalised input; dividing the (small) weight tensor
        # instead saves a pass over the activations and gives the same product.
        y = self._tiled_product(x, w_n / in_bound, self._tiles())
        channel = self._channel_dim(y)
        scale = analog.channel_view(w_max, y.dim(), channel) * (in_bound * gain)
        if self.bias is None:
            return y * scale
        return torch.addcmul(analog.channel_view(self.bias, y.dim(), channel), y, scale)  # bias + y * scale


class NoisyLinear(NoisyLayerMixin, nn.Linear):
    """``nn.Linear`` under a hardware profile."""

    _float_type = nn.Linear

    def _float_forward(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, w, b)

    def _channel_dim(self, y: torch.Tensor) -> int:
        return y.dim() - 1

    def _tiled_product(self, x: torch.Tensor, w: torch.Tensor, tiles: int) -> torch.Tensor:
        if tiles == 1:
            return self._tile_stages(F.linear(x, w), 1)
        return self._tile_stages(analog.linear_tiles(x, w, tiles), tiles).sum(dim=-2)


class _NoisyConvNd(NoisyLayerMixin):
    _conv: Any

    def _conv_args(self) -> dict[str, Any]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        args = self._conv_args()
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            args["padding"] = 0
        return x, args

    def _float_forward(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        x, args = self._pad(x)
        return type(self)._conv(x, w, b, groups=self.groups, **args)

    def _channel_dim(self, y: torch.Tensor) -> int:
        return 1

    def _tiles(self) -> int:
        tiles = super()._tiles()
        if tiles == 1:
            return 1
        # Whole kernels per tile: at most rows // (kernel size) channels in one tile.
        kernel = self.weight[0, 0].numel()
        channels_per_tile = max(1, self.noise_site.profile.tile.rows // kernel)
        return math.ceil(self.weight.shape[1] / channels_per_tile)

    def _rows_per_tile(self, tiles: int) -> int:
        # conv_tiles splits each group's channels evenly; a kernel is never split.
        return math.ceil(self.weight.shape[1] / tiles) * self.weight[0, 0].numel()

    def _tiled_product(self, x: torch.Tensor, w: torch.Tensor, tiles: int) -> torch.Tensor:
        x, args = self._pad(x)
        conv = type(self)._conv
        if tiles == 1:
            return self._tile_stages(conv(x, w, None, groups=self.groups, **args), 1)
        y = analog.conv_tiles(x, w, tiles, self.groups, conv, **args)
        y = self._tile_stages(y, tiles).sum(dim=2)
        return y.flatten(1, 2)


class NoisyConv1d(_NoisyConvNd, nn.Conv1d):
    """``nn.Conv1d`` under a hardware profile (groups and depthwise included)."""

    _float_type = nn.Conv1d
    _conv = staticmethod(F.conv1d)


class NoisyConv2d(_NoisyConvNd, nn.Conv2d):
    """``nn.Conv2d`` under a hardware profile (groups and depthwise included)."""

    _float_type = nn.Conv2d
    _conv = staticmethod(F.conv2d)


DEFAULT_TWINS: dict[type[nn.Module], type[NoisyLayerMixin]] = {
    nn.Linear: NoisyLinear,
    nn.Conv1d: NoisyConv1d,
    nn.Conv2d: NoisyConv2d,
}

