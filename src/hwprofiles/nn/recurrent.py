"""Noisy twins of ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU``.

Every gate product runs on the chip: per layer and direction, ``weight_ih_l{k}`` (the
input product) and ``weight_hh_l{k}`` (the recurrent product) are each an analog product
with its own noise site (``<name>.weight_ih_l0``, ``<name>.weight_hh_l0_reverse``, ...)
and input bound. As with a convolution's positions, one weight read serves the input
product of every time step (it is computed for the whole sequence at once); the
recurrent product is read afresh at each step, on the chip instance drawn for that
forward. The gate nonlinearities and the state update stay digital.

``batch_first``, ``num_layers``, ``bidirectional``, ``bias``, ``dropout`` and unbatched
inputs are supported; LSTM projections (``proj_size``) and packed sequences are not.

    >>> import torch, torch.nn as nn, hwprofiles
    >>> lstm = nn.LSTM(4, 8, num_layers=2, batch_first=True)
    >>> noisy = hwprofiles.to_noisy(lstm, "gaussian-additive")
    >>> out, (h, c) = noisy(torch.randn(3, 5, 4))
    >>> out.shape, h.shape
    (torch.Size([3, 5, 8]), torch.Size([2, 3, 8]))
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.nn.products import LINEAR
from hwprofiles.nn.site import NoiseSite
from hwprofiles.nn.twin import NoisyTwin

State = tuple[torch.Tensor, ...]


class _NoisyRNNBase(NoisyTwin, nn.RNNBase):
    """The recurrence shared by the three twins; each defines its cell."""

    _state_parts: ClassVar[int] = 1  # tensors in the state: h (and c, for the LSTM)

    @classmethod
    def unsupported(cls, module: nn.Module) -> str | None:
        if getattr(module, "proj_size", 0):
            return f"proj_size={module.proj_size} (LSTM projections) has no noisy twin"
        return None

    def _suffixes(self) -> list[str]:
        directions = ["", "_reverse"] if self.bidirectional else [""]
        return [f"_l{layer}{d}" for layer in range(self.num_layers) for d in directions]

    def _init_noise(self, site: NoiseSite, **options: Any) -> None:
        profile, name = site.profile, site.name
        device = next(self.parameters()).device  # weight_ih_l0 comes first
        for suffix in self._suffixes():
            for kind in ("ih", "hh"):
                part = f"weight_{kind}{suffix}"
                setattr(
                    self,
                    f"mvm_{kind}{suffix}",
                    AnalogMVM(NoiseSite(profile, f"{name}.{part}" if name else part), device=device),
                )

    def _initial_state(self, x: torch.Tensor, hx: Any) -> State:
        """The state each (layer, direction) starts from: ``hx`` as given, or zeros."""
        if hx is None:
            directions = 2 if self.bidirectional else 1
            zeros = x.new_zeros(self.num_layers * directions, x.shape[1], self.hidden_size)
            return (zeros,) * self._state_parts
        return tuple(hx) if self._state_parts > 1 else (hx,)

    def _cell(self, gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
        raise NotImplementedError

    def _output_state(self, states: list[State]) -> Any:
        """The final states of every (layer, direction), stacked as torch returns them."""
        stacked = tuple(torch.stack([s[part] for s in states]) for part in range(self._state_parts))
        return stacked if self._state_parts > 1 else stacked[0]

    def forward(self, input: Any, hx: Any = None) -> Any:  # noqa: A002 (torch's name)
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise TypeError(
                f"{type(self).__name__} does not take packed sequences; pass the padded batch "
                "(torch.nn.utils.rnn.pad_packed_sequence) and read each sequence's output at its length"
            )
        if not self._acts():  # noise-free and ideal: exactly the float layer
            return super().forward(input, hx)
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.transpose(0, 1)  # (time, batch, features)
        if hx is not None and not batched:
            hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
        initial = self._initial_state(x, hx)
        directions = 2 if self.bidirectional else 1
        suffixes = self._suffixes()
        finals: list[State] = []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for d in range(directions):
                index = layer * directions + d
                suffix = suffixes[index]
                ys, state = self._run_direction(layer_input, suffix, tuple(s[index] for s in initial), reverse=d == 1)
                outputs.append(ys)
                finals.append(state)
            layer_input = outputs[0] if directions == 1 else torch.cat(outputs, dim=-1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, p=self.dropout, training=True)
        output = layer_input
        state = self._output_state(finals)
        if not batched:
            output = output.squeeze(1)
            state = tuple(s.squeeze(1) for s in state) if isinstance(state, tuple) else state.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, state

    def _run_direction(
        self, x: torch.Tensor, suffix: str, state: State, *, reverse: bool
    ) -> tuple[torch.Tensor, State]:
        w_ih, w_hh = getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}")
        b_ih = getattr(self, f"bias_ih{suffix}") if self.bias else None
        b_hh = getattr(self, f"bias_hh{suffix}") if self.bias else None
        mvm_hh: AnalogMVM = getattr(self, f"mvm_hh{suffix}")
        gi = getattr(self, f"mvm_ih{suffix}")(x, w_ih, b_ih, LINEAR)  # every time step at once
        steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
        ys: list[torch.Tensor] = [x] * x.shape[0]
        with mvm_hh.hold():  # one chip for the whole sequence, in training too
            for t in steps:
                gh = mvm_hh(state[0], w_hh, b_hh, LINEAR)
                state = self._cell(gi[t], gh, state)
                ys[t] = state[0]
        return torch.stack(ys), state


class NoisyRNN(_NoisyRNNBase, nn.RNN):
    """``nn.RNN`` (tanh or relu) under a hardware profile."""

    def _cell(self, gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
        act = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        return (act(gi + gh),)


class NoisyGRU(_NoisyRNNBase, nn.GRU):
    """``nn.GRU`` under a hardware profile."""

    def _cell(self, gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
        i_r, i_z, i_n = gi.chunk(3, dim=-1)
        h_r, h_z, h_n = gh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)  # h_n holds b_hn: torch's GRU puts it inside r * (.)
        return ((1 - z) * n + z * state[0],)


class NoisyLSTM(_NoisyRNNBase, nn.LSTM):
    """``nn.LSTM`` under a hardware profile (without ``proj_size``)."""

    _state_parts = 2  # (h, c)

    def _cell(self, gi: torch.Tensor, gh: torch.Tensor, state: State) -> State:
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * state[1] + torch.sigmoid(i) * torch.tanh(g)
        return (torch.sigmoid(o) * torch.tanh(c), c)


__all__ = ["NoisyGRU", "NoisyLSTM", "NoisyRNN"]
