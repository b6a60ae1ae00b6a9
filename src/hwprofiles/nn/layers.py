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
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.nn.products import LINEAR, Product, Stages
from hwprofiles.nn.site import NoiseSite
from hwprofiles.nn.twin import NoisyTwin


class NoisyLayerMixin(NoisyTwin):
    """A twin computing one product of its own ``weight`` and ``bias`` (Linear, Conv)."""

    weight: torch.Tensor
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

    def _product(self) -> Product:
        return LINEAR


# The functional form of each convolution, by its number of spatial dimensions.
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


class ConvProduct:
    """A convolution as an analog product: inputs split into tiles by whole kernels."""

    def __init__(self, layer: nn.modules.conv._ConvNd) -> None:
        self.layer = layer
        self.conv = _CONV[len(layer.kernel_size)]

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        layer = self.layer
        args: dict[str, Any] = {"stride": layer.stride, "padding": layer.padding, "dilation": layer.dilation}
        if layer.padding_mode != "zeros":
            x = F.pad(x, layer._reversed_padding_repeated_twice, mode=layer.padding_mode)
            args["padding"] = 0
        return x, args

    def float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        x, args = self._pad(x)
        return self.conv(x, w, b, groups=self.layer.groups, **args)

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
        conv, groups = self.conv, self.layer.groups
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


class _NoisyConvNd(NoisyLayerMixin, nn.modules.conv._ConvNd):
    def _product(self) -> Product:
        return ConvProduct(self)


class NoisyConv1d(_NoisyConvNd, nn.Conv1d):
    """``nn.Conv1d`` under a hardware profile (groups and depthwise included)."""


class NoisyConv2d(_NoisyConvNd, nn.Conv2d):
    """``nn.Conv2d`` under a hardware profile (groups and depthwise included)."""


class NoisyConv3d(_NoisyConvNd, nn.Conv3d):
    """``nn.Conv3d`` under a hardware profile (groups and depthwise included)."""


class ConvTransposeProduct:
    """A transposed convolution as an analog product.

    Its weight is ``(in, out / groups, *kernel)``: the rows of the array are the input
    channels (times the kernel), so tiles split each group's input channels, never a
    kernel, and an output channel's ``w_max`` spans the input channels of its group.
    """

    def __init__(self, layer: nn.modules.conv._ConvTransposeNd, output_padding: Any) -> None:
        self.layer = layer
        self.output_padding = output_padding
        self.conv = _CONV_TRANSPOSE[len(layer.kernel_size)]

    def _args(self) -> dict[str, Any]:
        layer = self.layer
        return {
            "stride": layer.stride,
            "padding": layer.padding,
            "output_padding": self.output_padding,
            "dilation": layer.dilation,
        }

    def float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return self.conv(x, w, b, groups=self.layer.groups, **self._args())

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
        conv, groups = self.conv, self.layer.groups
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


class _NoisyConvTransposeNd(NoisyLayerMixin, nn.modules.conv._ConvTransposeNd):
    def _product(self, output_padding: Any = None) -> Product:
        return ConvTransposeProduct(self, self.output_padding if output_padding is None else output_padding)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        output_padding = self._output_padding(
            x,
            output_size,
            self.stride,  # type: ignore[arg-type]  # tuples, as torch's own forward passes them
            self.padding,  # type: ignore[arg-type]
            self.kernel_size,  # type: ignore[arg-type]
            len(self.kernel_size),
            self.dilation,  # type: ignore[arg-type]
        )
        return self.mvm(x, self.weight, self.bias, self._product(output_padding))


class NoisyConvTranspose1d(_NoisyConvTransposeNd, nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` under a hardware profile."""


class NoisyConvTranspose2d(_NoisyConvTransposeNd, nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` under a hardware profile."""


class NoisyConvTranspose3d(_NoisyConvTransposeNd, nn.ConvTranspose3d):
    """``nn.ConvTranspose3d`` under a hardware profile."""


LAYER_TWINS: dict[type[nn.Module], type[NoisyLayerMixin]] = {
    nn.Linear: NoisyLinear,
    nn.Conv1d: NoisyConv1d,
    nn.Conv2d: NoisyConv2d,
    nn.Conv3d: NoisyConv3d,
    nn.ConvTranspose1d: NoisyConvTranspose1d,
    nn.ConvTranspose2d: NoisyConvTranspose2d,
    nn.ConvTranspose3d: NoisyConvTranspose3d,
}
