"""Noisy twins of ``nn.Linear`` and the convolutions (``nn.Conv1d/2d/3d``,
``nn.ConvTranspose1d/2d/3d``).

A twin subclasses its float layer, keeps its parameters (same names, same
state-dict keys, plus its product's calibrated input bound ``mvm.input_bound``) and
changes only what ``forward`` does to inputs, weights and outputs: its
:class:`~hwprofiles.nn.mvm.AnalogMVM` computes the product as the chip does. Build
one with ``from_float`` and go back with ``to_float``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwprofiles.nn import analog
from hwprofiles.nn.mvm import LINEAR, AnalogMVM, NoisyTwin, Product, Stages
from hwprofiles.nn.site import NoiseSite


class NoisyLayerMixin(NoisyTwin):
    """A twin computing one product of its own ``weight`` and ``bias`` (Linear, Conv)."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    mvm: AnalogMVM

    def _init_noise(self, site: NoiseSite, **options: Any) -> None:
        self.mvm = AnalogMVM(site, device=self.weight.device)

    @property
    def noise_site(self) -> NoiseSite:
        """The noise site of the layer's product."""
        return self.mvm.site

    def _product(self) -> Product:
        raise NotImplementedError

    def _tiles(self) -> int:
        """How many tiles the product is split into under the current profile."""
        return self.mvm.tiles(self.weight, self._product())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mvm(x, self.weight, self.bias, self._product())


class NoisyLinear(NoisyLayerMixin, nn.Linear):
    """``nn.Linear`` under a hardware profile."""

    _float_type = nn.Linear

    def _product(self) -> Product:
        return LINEAR


class ConvProduct:
    """A convolution as an analog product: inputs split into tiles by whole kernels."""

    def __init__(self, layer: _NoisyConvNd) -> None:
        self.layer = layer

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        layer = self.layer
        args = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation}
        if layer.padding_mode != "zeros":
            x = F.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
            args["padding"] = 0
        return x, args

    def float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        x, args = self._pad(x)
        return type(self.layer)._conv(x, w, b, groups=self.layer.groups, **args)

    def tiles(self, w: torch.Tensor, rows: int) -> int:
        if analog.n_tiles(w[0].numel(), rows) == 1:
            return 1
        # Whole kernels per tile: at most rows // (kernel size) channels in one tile.
        channels_per_tile = max(1, rows // w[0, 0].numel())
        return math.ceil(w.shape[1] / channels_per_tile)

    def rows_per_tile(self, w: torch.Tensor, tiles: int) -> int:
        # conv_tiles splits each group's channels evenly; a kernel is never split.
        return math.ceil(w.shape[1] / tiles) * w[0, 0].numel()

    def tiled(self, x: torch.Tensor, w: torch.Tensor, tiles: int, stages: Stages) -> torch.Tensor:
        x, args = self._pad(x)
        conv = type(self.layer)._conv
        groups = self.layer.groups
        if tiles == 1:
            return stages(conv(x, w, None, groups=groups, **args), 1)
        y = analog.conv_tiles(x, w, tiles, groups, conv, **args)
        return stages(y, tiles).sum(dim=2).flatten(1, 2)

    def weight_max(self, w: torch.Tensor, per_channel: bool) -> torch.Tensor:
        return analog.weight_max(w, per_channel)

    def scale_view(self, w_max: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return analog.channel_view(w_max, y.dim(), 1)

    def bias_view(self, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return analog.channel_view(b, y.dim(), 1)


class _NoisyConvNd(NoisyLayerMixin):
    _conv: Any
    groups: int

    def _product(self) -> Product:
        return ConvProduct(self)


class NoisyConv1d(_NoisyConvNd, nn.Conv1d):
    """``nn.Conv1d`` under a hardware profile (groups and depthwise included)."""

    _float_type = nn.Conv1d
    _conv = staticmethod(F.conv1d)


class NoisyConv2d(_NoisyConvNd, nn.Conv2d):
    """``nn.Conv2d`` under a hardware profile (groups and depthwise included)."""

    _float_type = nn.Conv2d
    _conv = staticmethod(F.conv2d)


class NoisyConv3d(_NoisyConvNd, nn.Conv3d):
    """``nn.Conv3d`` under a hardware profile (groups and depthwise included)."""

    _float_type = nn.Conv3d
    _conv = staticmethod(F.conv3d)


class ConvTransposeProduct:
    """A transposed convolution as an analog product.

    Its weight is ``(in, out / groups, *kernel)``: the rows of the array are the input
    channels (times the kernel), so tiles split each group's input channels, never a
    kernel, and an output channel's ``w_max`` spans the input channels of its group.
    """

    def __init__(self, layer: _NoisyConvTransposeNd, output_padding: Any) -> None:
        self.layer = layer
        self.output_padding = output_padding

    def _args(self) -> dict[str, Any]:
        layer = self.layer
        return {
            "stride": layer.stride,
            "padding": layer.padding,
            "output_padding": self.output_padding,
            "dilation": layer.dilation,
        }

    def float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return type(self.layer)._conv(x, w, b, groups=self.layer.groups, **self._args())

    def _channels(self, w: torch.Tensor) -> int:
        return w.shape[0] // self.layer.groups

    def tiles(self, w: torch.Tensor, rows: int) -> int:
        kernel = w[0, 0].numel()
        if analog.n_tiles(self._channels(w) * kernel, rows) == 1:
            return 1
        return math.ceil(self._channels(w) / max(1, rows // kernel))

    def rows_per_tile(self, w: torch.Tensor, tiles: int) -> int:
        return math.ceil(self._channels(w) / tiles) * w[0, 0].numel()

    def tiled(self, x: torch.Tensor, w: torch.Tensor, tiles: int, stages: Stages) -> torch.Tensor:
        conv, groups = type(self.layer)._conv, self.layer.groups
        if tiles == 1:
            return stages(conv(x, w, None, groups=groups, **self._args()), 1)
        # One grouped transposed convolution computes every (group, tile) block at once.
        n, spatial = x.shape[0], x.shape[2:]
        c_g, o_g, kernel = self._channels(w), w.shape[1], w.shape[2:]
        c_t = math.ceil(c_g / tiles)
        extra = c_t * tiles - c_g
        xg = analog.pad_dim(x.reshape(n, groups, c_g, *spatial), 2, extra).reshape(n, groups * tiles * c_t, *spatial)
        wg = analog.pad_dim(w.reshape(groups, c_g, o_g, *kernel), 1, extra).reshape(groups * tiles * c_t, o_g, *kernel)
        y = conv(xg, wg, None, groups=groups * tiles, **self._args())
        y = y.view(n, groups, tiles, o_g, *y.shape[2:])
        return stages(y, tiles).sum(dim=2).flatten(1, 2)

    def weight_max(self, w: torch.Tensor, per_channel: bool) -> torch.Tensor:
        if not per_channel:
            return analog.weight_max(w, False)
        groups, c_g, o_g = self.layer.groups, self._channels(w), w.shape[1]
        g = w.reshape(groups, c_g, o_g, -1).abs().amax(dim=(1, 3), keepdim=True).clamp_min(1e-12)  # (G, 1, O_g, 1)
        shape = (groups * c_g, o_g) + (1,) * (w.dim() - 2)
        return g.expand(groups, c_g, o_g, 1).reshape(shape)

    def scale_view(self, w_max: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if w_max.dim() == 0:
            return w_max
        groups = self.layer.groups
        per_out = w_max.reshape(groups, -1, w_max.shape[1])[:, 0].reshape(-1)  # one per output channel
        return analog.channel_view(per_out, y.dim(), 1)

    def bias_view(self, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return analog.channel_view(b, y.dim(), 1)


class _NoisyConvTransposeNd(NoisyLayerMixin):
    _conv: Any
    _spatial_dims: int
    groups: int

    def _product(self, output_padding: Any = None) -> Product:
        return ConvTransposeProduct(self, self.output_padding if output_padding is None else output_padding)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        output_padding = self._output_padding(  # type: ignore[attr-defined]
            x, output_size, self.stride, self.padding, self.kernel_size, self._spatial_dims, self.dilation
        )
        return self.mvm(x, self.weight, self.bias, self._product(output_padding))


class NoisyConvTranspose1d(_NoisyConvTransposeNd, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` under a hardware profile."""

    _float_type = nn.ConvTranspose1d
    _conv = staticmethod(F.conv_transpose1d)
    _spatial_dims = 1


class NoisyConvTranspose2d(_NoisyConvTransposeNd, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` under a hardware profile."""

    _float_type = nn.ConvTranspose2d
    _conv = staticmethod(F.conv_transpose2d)
    _spatial_dims = 2


class NoisyConvTranspose3d(_NoisyConvTransposeNd, nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` under a hardware profile."""

    _float_type = nn.ConvTranspose3d
    _conv = staticmethod(F.conv_transpose3d)
    _spatial_dims = 3


LAYER_TWINS: dict[type[nn.Module], type[NoisyLayerMixin]] = {
    nn.Linear: NoisyLinear,
    nn.Conv1d: NoisyConv1d,
    nn.Conv2d: NoisyConv2d,
    nn.Conv3d: NoisyConv3d,
    nn.ConvTranspose1d: NoisyConvTranspose1d,
    nn.ConvTranspose2d: NoisyConvTranspose2d,
    nn.ConvTranspose3d: NoisyConvTranspose3d,
}
