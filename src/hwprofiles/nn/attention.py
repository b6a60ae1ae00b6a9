"""The noisy twin of ``nn.MultiheadAttention``.

Its weight products run on the chip: the query, key and value projections (packed
``in_proj_weight`` or separate ``q/k/v_proj_weight``), each its own analog product with
its own input bound, and ``out_proj``, a :class:`~hwprofiles.nn.layers.NoisyLinear`.
The two attention products, ``Q K^T`` and ``softmax(.) V``, multiply activations by
activations and are digital on most chips; ``analog_attention=True`` (an option of
:func:`hwprofiles.to_noisy`) sends them through the analog path too, with K and V as the
"weights" written anew on every forward. Softmax, masks and dropout stay digital.

With a per-tensor weight mapping each projection (q, k, v) has its own ``w_max``, as
three arrays would.

    >>> import torch, torch.nn as nn, hwprofiles
    >>> attn = nn.MultiheadAttention(8, 2, batch_first=True)
    >>> noisy = hwprofiles.to_noisy(attn, "gaussian-additive", analog_attention=True)
    >>> x = torch.randn(3, 5, 8)
    >>> noisy(x, x, x, need_weights=False)[0].shape
    torch.Size([3, 5, 8])
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwprofiles.nn.layers import NoisyLinear
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.nn.products import BATCHED, LINEAR
from hwprofiles.nn.site import NoiseSite
from hwprofiles.nn.twin import NoisyTwin


def _float_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean mask (True: masked out) as an additive float mask, as torch reads it."""
    if mask is None or mask.is_floating_point():
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(mask, float("-inf"))


class NoisyMultiheadAttention(NoisyTwin, nn.MultiheadAttention):
    """``nn.MultiheadAttention`` under a hardware profile (``batch_first``, separate
    ``kdim``/``vdim``, ``bias_k``/``bias_v``, ``add_zero_attn`` and every mask included)."""

    _twin_attrs = ("analog_attention",)
    analog_attention: bool

    def _init_noise(self, site: NoiseSite, *, analog_attention: bool = False, **options: Any) -> None:
        profile, name = site.profile, site.name
        device = self.out_proj.weight.device

        def product(part: str, dynamic: bool = False) -> AnalogMVM:
            return AnalogMVM(NoiseSite(profile, f"{name}.{part}" if name else part), dynamic=dynamic, device=device)

        out_proj = NoisyLinear.from_float(self.out_proj, NoiseSite(profile, f"{name}.out_proj" if name else "out_proj"))
        self.add_module("out_proj", out_proj)  # not an attribute: torch types it as the float layer
        self.mvm_q, self.mvm_k, self.mvm_v = product("q_proj"), product("k_proj"), product("v_proj")
        self.analog_attention = bool(analog_attention)
        if self.analog_attention:
            self.mvm_qk, self.mvm_av = product("qk", dynamic=True), product("av", dynamic=True)

    @classmethod
    def inner_twins(cls, module: nn.Module) -> list[tuple[str, type[nn.Module], type[nn.Module]]]:
        return [("out_proj", type(module.get_submodule("out_proj")), NoisyLinear)]

    def _projections(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        if self._qkv_same_embed_dim:
            weights = list(self.in_proj_weight.chunk(3))  # views: the chip cache follows the parameter
        else:
            weights = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        biases = list(self.in_proj_bias.chunk(3)) if self.in_proj_bias is not None else [None] * 3
        return list(zip(weights, biases))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = True,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not self._acts():  # noise-free and ideal: exactly the float layer
            return super().forward(
                query, key, value, key_padding_mask, need_weights, attn_mask, average_attn_weights, is_causal
            )
        batched = query.dim() == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        tgt_len, bsz, embed = query.shape
        heads, head_dim = self.num_heads, self.head_dim
        (w_q, b_q), (w_k, b_k), (w_v, b_v) = self._projections()
        q = self.mvm_q(query, w_q, b_q, LINEAR)
        k = self.mvm_k(key, w_k, b_k, LINEAR)
        v = self.mvm_v(value, w_v, b_v, LINEAR)
        dtype = q.dtype
        attn_mask = _float_mask(attn_mask, dtype)
        key_padding_mask = _float_mask(key_padding_mask, dtype)
        if attn_mask is None and is_causal:
            attn_mask = torch.full((tgt_len, key.shape[0]), float("-inf"), dtype=dtype, device=q.device).triu(1)
        if self.bias_k is not None and self.bias_v is not None:
            k = torch.cat([k, self.bias_k.repeat(1, bsz, 1)])
            v = torch.cat([v, self.bias_v.repeat(1, bsz, 1)])
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        q = q.reshape(tgt_len, bsz * heads, head_dim).transpose(0, 1)
        k = k.reshape(k.shape[0], bsz * heads, head_dim).transpose(0, 1)
        v = v.reshape(v.shape[0], bsz * heads, head_dim).transpose(0, 1)
        if self.add_zero_attn:
            zeros = k.new_zeros(bsz * heads, 1, head_dim)
            k, v = torch.cat([k, zeros], dim=1), torch.cat([v, zeros], dim=1)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        src_len = k.shape[1]
        mask = None if attn_mask is None else (attn_mask if attn_mask.dim() == 3 else attn_mask.unsqueeze(0))
        if key_padding_mask is not None:
            padding = (
                key_padding_mask.view(bsz, 1, 1, src_len).expand(-1, heads, -1, -1).reshape(bsz * heads, 1, src_len)
            )
            mask = padding if mask is None else mask + padding
        q = q * math.sqrt(1.0 / head_dim)
        if self.analog_attention:
            scores = self.mvm_qk(q, k, None, BATCHED)
        else:
            scores = torch.bmm(q, k.transpose(1, 2))
        if mask is not None:
            scores = scores + mask
        weights = F.softmax(scores, dim=-1)
        if self.dropout > 0.0 and self.training:
            weights = F.dropout(weights, p=self.dropout)
        if self.analog_attention:
            out = self.mvm_av(weights, v.transpose(1, 2), None, BATCHED)
        else:
            out = torch.bmm(weights, v)
        out = out.transpose(0, 1).reshape(tgt_len * bsz, embed)
        out = self.out_proj(out).view(tgt_len, bsz, embed)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        weights = weights.view(bsz, heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return out, (weights if batched else weights.squeeze(0))


__all__ = ["NoisyMultiheadAttention"]
