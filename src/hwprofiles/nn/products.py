"""How each kind of analog product is computed: the part of the pipeline that depends
on the layer type (a linear map, a batched matmul; convolutions live with their twins in
:mod:`hwprofiles.nn.layers`).

An :class:`~hwprofiles.nn.mvm.AnalogMVM` runs the chip's pipeline around a
:class:`Product`: it normalises the weights, and the product says how to find their
maxima, split the inputs into tiles, compute each tile's partial sums and shape the
output scales and bias.

    >>> import torch
    >>> LINEAR.float(torch.ones(2, 3), torch.eye(3), None).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F

from hwprofiles.nn import analog

Stages = Callable[[torch.Tensor, int], torch.Tensor]


class Product(Protocol):
    """The parts of an analog product that depend on the layer type."""

    def float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        """The float product plus bias (used when the profile has no analog stage)."""

    def tiles(self, w: torch.Tensor, rows: int) -> int:
        """How many tiles of at most ``rows`` rows the product needs."""

    def rows_per_tile(self, w: torch.Tensor, tiles: int) -> int:
        """Rows one tile uses when the inputs are split into ``tiles``."""

    def tiled(self, x: torch.Tensor, w: torch.Tensor, tiles: int, stages: Stages) -> torch.Tensor:
        """The product of normalised ``w``; each tile's partial sums go through ``stages``, then are summed."""

    def weight_max(self, w: torch.Tensor, per_channel: bool) -> torch.Tensor:
        """max |w| per output channel (broadcastable to ``w``) or per tensor."""

    def scale_view(self, w_max: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``w_max`` shaped to broadcast against the output ``y``."""

    def bias_view(self, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The bias shaped to broadcast against the output ``y``."""


class LinearProduct:
    """``x @ w.T`` over the last dimension of ``x`` (``w``: out x in)."""

    def float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.linear(x, w, b)

    def tiles(self, w: torch.Tensor, rows: int) -> int:
        return analog.n_tiles(w.shape[1], rows)

    def rows_per_tile(self, w: torch.Tensor, tiles: int) -> int:
        return math.ceil(w.shape[1] / tiles)

    def tiled(self, x: torch.Tensor, w: torch.Tensor, tiles: int, stages: Stages) -> torch.Tensor:
        if tiles == 1:
            return stages(F.linear(x, w), 1)
        return stages(analog.linear_tiles(x, w, tiles), tiles).sum(dim=-2)

    def weight_max(self, w: torch.Tensor, per_channel: bool) -> torch.Tensor:
        return analog.weight_max(w, per_channel)

    def scale_view(self, w_max: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return analog.channel_view(w_max, y.dim(), y.dim() - 1)

    def bias_view(self, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return analog.channel_view(b, y.dim(), y.dim() - 1)


class BatchedProduct:
    """``x @ w.transpose(-1, -2)`` with one matrix per batch element (``w``: batch x out x in),
    as attention's QK^T and AV products are; the "weights" are activations."""

    def float(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        y = torch.matmul(x, w.transpose(-1, -2))
        return y if b is None else y + b

    def tiles(self, w: torch.Tensor, rows: int) -> int:
        return analog.n_tiles(w.shape[-1], rows)

    def rows_per_tile(self, w: torch.Tensor, tiles: int) -> int:
        return math.ceil(w.shape[-1] / tiles)

    def tiled(self, x: torch.Tensor, w: torch.Tensor, tiles: int, stages: Stages) -> torch.Tensor:
        if tiles == 1:
            return stages(torch.matmul(x, w.transpose(-1, -2)), 1)
        fan_in = w.shape[-1]
        rows = math.ceil(fan_in / tiles)
        extra = rows * tiles - fan_in
        xt = analog.pad_dim(x, -1, extra).unflatten(-1, (tiles, rows))  # (B, L, T, R)
        wt = analog.pad_dim(w, -1, extra).unflatten(-1, (tiles, rows))  # (B, O, T, R)
        y = torch.einsum("bltr,botr->blto", xt, wt)
        return stages(y, tiles).sum(dim=-2)

    def weight_max(self, w: torch.Tensor, per_channel: bool) -> torch.Tensor:
        dims = (-1,) if per_channel else (-2, -1)
        return w.abs().amax(dim=dims, keepdim=True).clamp_min(1e-12)

    def scale_view(self, w_max: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return w_max.transpose(-1, -2)  # (B, O, 1) -> (B, 1, O): one scale per output column

    def bias_view(self, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return b


LINEAR = LinearProduct()
BATCHED = BatchedProduct()


__all__ = ["BATCHED", "LINEAR", "BatchedProduct", "LinearProduct", "Product", "Stages"]
