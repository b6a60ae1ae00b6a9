"""Every matrix-vector layer is converted, or named as not converted.

Attention, recurrent, 3-d and transposed convolution twins compute what their float
layers compute when the analog path adds nothing; every product of a converted
Transformer and LSTM language model carries noise; the conversion report and warning
name each layer left float.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
import torch.nn as nn
from helpers import make_profile

import hwprofiles
from hwprofiles.nn.attention import NoisyMultiheadAttention
from hwprofiles.nn.convert import analog_products
from hwprofiles.nn.layers import (
    NoisyConv3d,
    NoisyConvTranspose1d,
    NoisyConvTranspose2d,
    NoisyConvTranspose3d,
    NoisyLinear,
)
from hwprofiles.nn.mvm import AnalogMVM
from hwprofiles.nn.recurrent import NoisyGRU, NoisyLSTM, NoisyRNN

pytestmark = pytest.mark.usefixtures("one_thread")

# An analog path that changes nothing: an ADC that neither rounds nor clips, no noise.
TRANSPARENT = make_profile([], adc={"bits": None, "bound": 1e6})
READ_NOISE = make_profile([{"kind": "weight_read_noise", "sigma": 0.05}])


def rand(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# -- the twins compute their float layer's function ----------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"batch_first": True},
        {},
        {"kdim": 5, "vdim": 3},
        {"add_bias_kv": True, "add_zero_attn": True},
        {"bias": False},
    ],
    ids=["batch_first", "seq_first", "kdim_vdim", "bias_kv_zero_attn", "no_bias"],
)
@pytest.mark.parametrize("analog_attention", [False, True])
def test_attention_twin_computes_the_float_attention(options: dict[str, Any], analog_attention: bool) -> None:
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(8, 2, **options).double().eval()
    noisy = hwprofiles.to_noisy(attn, TRANSPARENT, analog_attention=analog_attention).eval()
    assert type(noisy) is NoisyMultiheadAttention and type(noisy.out_proj) is NoisyLinear
    assert len(analog_products(noisy)) == 4 + 2 * analog_attention
    first = options.get("batch_first", False)
    q = rand(3, 4, 8, seed=1) if first else rand(4, 3, 8, seed=1)
    k = rand(3, 6, options.get("kdim", 8), seed=2) if first else rand(6, 3, options.get("kdim", 8), seed=2)
    v = rand(3, 6, options.get("vdim", 8), seed=3) if first else rand(6, 3, options.get("vdim", 8), seed=3)
    padding = torch.zeros(3, 6, dtype=torch.bool)
    padding[0, -2:] = True
    for masks in [
        {},
        {"key_padding_mask": padding, "attn_mask": rand(4, 6) > 1, "average_attn_weights": False},
        {"attn_mask": rand(4, 6, seed=5), "need_weights": False},
    ]:
        expected, got = attn(q, k, v, **masks), noisy(q, k, v, **masks)
        torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
        if expected[1] is not None:
            torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(noisy(q[0], k[0], v[0])[0], attn(q[0], k[0], v[0])[0])  # unbatched


@pytest.mark.parametrize("kind", [nn.RNN, nn.LSTM, nn.GRU], ids=lambda k: k.__name__)
@pytest.mark.parametrize(
    "options",
    [
        {"batch_first": True},
        {"num_layers": 2, "bidirectional": True},
        {"bias": False, "num_layers": 2, "dropout": 0.5},
    ],
    ids=["batch_first", "bidirectional", "no_bias"],
)
def test_recurrent_twin_computes_the_float_recurrence(kind: type, options: dict[str, Any]) -> None:
    torch.manual_seed(0)
    layer = kind(5, 7, **options).double().eval()
    noisy = hwprofiles.to_noisy(layer, TRANSPARENT).eval()
    assert type(noisy) is {nn.RNN: NoisyRNN, nn.LSTM: NoisyLSTM, nn.GRU: NoisyGRU}[kind]
    layers, directions = options.get("num_layers", 1), 2 if options.get("bidirectional") else 1
    assert len(analog_products(noisy)) == 2 * layers * directions  # weight_ih and weight_hh of each
    x = rand(3, 4, 5)
    expected, got = layer(x), noisy(x)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-12, atol=1e-12)  # final state (tuple for LSTM)
    state = tuple(s + 0.1 for s in expected[1]) if kind is nn.LSTM else expected[1] + 0.1
    torch.testing.assert_close(noisy(x, state)[0], layer(x, state)[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(noisy(x[0])[0], layer(x[0])[0], rtol=1e-12, atol=1e-12)  # unbatched


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.Conv3d(4, 6, 3, groups=2, padding=1), (2, 4, 5, 5, 5)),
        (lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1), (2, 4, 7)),
        (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), (2, 4, 5, 5)),
        (lambda: nn.ConvTranspose3d(4, 2, 2), (1, 4, 3, 3, 3)),
    ],
    ids=["conv3d", "conv_transpose1d", "conv_transpose2d_groups", "conv_transpose3d"],
)
@pytest.mark.parametrize("rows", [None, 9])
def test_conv_twins_compute_the_float_convolution_on_any_tiling(make, shape: tuple[int, ...], rows: int | None) -> None:
    torch.manual_seed(0)
    layer = make().double()
    tile = None if rows is None else {"rows": rows}
    noisy = hwprofiles.to_noisy(layer, make_profile([], adc={"bits": None, "bound": 1e6}, tile=tile))
    assert type(noisy) in (NoisyConv3d, NoisyConvTranspose1d, NoisyConvTranspose2d, NoisyConvTranspose3d)
    assert (noisy._tiles() > 1) is (rows is not None)
    x = rand(*shape)
    with torch.no_grad():
        torch.testing.assert_close(noisy(x), layer(x), rtol=1e-12, atol=1e-12)


def test_transposed_conv_twin_keeps_output_size() -> None:
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2)
    noisy = hwprofiles.to_noisy(layer, READ_NOISE)
    x = torch.randn(1, 2, 4, 4)
    assert noisy(x, output_size=[10, 10]).shape == layer(x, output_size=[10, 10]).shape == (1, 3, 10, 10)


# -- every product of a real model carries noise ------------------------------------------------
class LanguageModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 24, num_layers=2, batch_first=True)
        self.head = nn.Linear(24, 50)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.embed(tokens))[0])


def encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), 2, enable_nested_tensor=True
    )


def noisy_products(model: nn.Module) -> dict[str, list[bool]]:
    """Run by each analog product of ``model``: whether its output differed from the float product."""
    seen: dict[str, list[bool]] = {}

    def record(module: AnalogMVM, args: tuple, output: torch.Tensor) -> None:
        x, weight, bias, product = args
        if bool(x.any()):  # (a zero input, as a recurrent state starts, reads no weight)
            seen.setdefault(module.site.name, []).append(not torch.equal(output, product.float(x, weight, bias)))

    for mvm in analog_products(model):
        mvm.register_forward_hook(record)
    return seen


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")  # the float encoder's fused path
@pytest.mark.parametrize("analog_attention", [False, True])
def test_every_matmul_of_a_transformer_encoder_carries_noise(analog_attention: bool) -> None:
    model = encoder().eval()
    noisy, report = hwprofiles.to_noisy(model, READ_NOISE, analog_attention=analog_attention, report=True)
    assert not report.left_float
    assert [c.name for c in report.converted] == [
        f"layers.{i}.{part}" for i in range(2) for part in ("self_attn", "self_attn.out_proj", "linear1", "linear2")
    ]
    x = torch.randn(3, 5, 16)
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[0, -1] = True
    with torch.no_grad():  # eval and no grad: torch's fused encoder path would take the float weights
        clean = model(x, src_key_padding_mask=padding)
        hwprofiles.program(noisy.eval(), seed=1)
        y = noisy(x, src_key_padding_mask=padding)
    hwprofiles.program(noisy, seed=1)
    torch.testing.assert_close(noisy(x, src_key_padding_mask=padding), y)  # with autograd: never fused
    seen = noisy_products(noisy)  # (hooks alone would keep torch off its fused path)
    with torch.no_grad():
        noisy(x, src_key_padding_mask=padding)
    parts = (
        ["q_proj", "k_proj", "v_proj", "out_proj", "qk", "av"]
        if analog_attention
        else ["q_proj", "k_proj", "v_proj", "out_proj"]
    )
    expected = {f"layers.{i}.{p}" for i in range(2) for p in ["linear1", "linear2"]}
    expected |= {f"layers.{i}.self_attn.{p}" for i in range(2) for p in parts}
    assert set(seen) == expected
    assert all(all(differs) for differs in seen.values())
    assert y.shape == clean.shape and not torch.allclose(y[1:], clean[1:])
    back = hwprofiles.to_clean(noisy)
    with torch.no_grad():
        torch.testing.assert_close(back(x, src_key_padding_mask=padding), clean)


def test_every_matmul_of_an_lstm_language_model_carries_noise() -> None:
    torch.manual_seed(0)
    model = LanguageModel()
    noisy, report = hwprofiles.to_noisy(model, READ_NOISE, report=True)
    assert not report.left_float
    assert [(c.name, c.float_type, c.twin_type) for c in report.converted] == [
        ("lstm", nn.LSTM, NoisyLSTM),
        ("head", nn.Linear, NoisyLinear),
    ]
    seen = noisy_products(noisy)
    tokens = torch.randint(0, 50, (4, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        noisy.eval()(tokens)
    assert set(seen) == {"head", *(f"lstm.weight_{k}_l{n}" for k in ("ih", "hh") for n in (0, 1))}
    assert len(seen["lstm.weight_hh_l0"]) == 5  # one read per time step after the first (zero state)
    assert all(all(differs) for differs in seen.values())
    assert list(hwprofiles.to_clean(noisy).state_dict()) == list(model.state_dict())


def test_recurrent_twins_calibrate_every_product_and_train() -> None:
    model = LanguageModel()
    tokens = torch.randint(0, 50, (8, 6), generator=torch.Generator().manual_seed(1))
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020", calibration=[tokens])
    assert all(m.bound > 0 for m in analog_products(noisy))
    assert sorted(k for k in noisy.state_dict() if k.endswith("input_bound")) == sorted(
        [f"lstm.mvm_{k}_l{n}.input_bound" for k in ("ih", "hh") for n in (0, 1)] + ["head.mvm.input_bound"]
    )
    noisy.train()
    loss = noisy(tokens).logsumexp(-1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in noisy.parameters())
    with torch.no_grad():
        assert torch.isfinite(noisy.eval()(tokens)).all()


def test_unsupported_recurrent_settings_are_named() -> None:
    with pytest.warns(hwprofiles.FloatLayerWarning, match=r"'rnn' \(LSTM: proj_size=3 \(LSTM projections\)"):
        noisy = hwprofiles.to_noisy(nn.Sequential(), READ_NOISE)  # nothing to warn about
        noisy = hwprofiles.to_noisy(nn.ModuleDict({"rnn": nn.LSTM(4, 6, proj_size=3)}), READ_NOISE)
    assert type(noisy["rnn"]) is nn.LSTM
    lstm = hwprofiles.to_noisy(nn.LSTM(4, 6), READ_NOISE)
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(5, 2, 4), [5, 3])
    with pytest.raises(TypeError, match="packed sequences; pass the padded batch"):
        lstm(packed)


# -- the report, the warning and strict ---------------------------------------------------------
class MyLinear(nn.Linear):
    pass


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.custom = MyLinear(2, 2)
        self.cell = nn.GRUCell(2, 2)
        self.skip = nn.Linear(2, 2)
        self.head = nn.Linear(2, 2)


def test_the_report_lists_each_matrix_layer_with_why_it_stayed_float() -> None:
    model = Mixed()
    before = [type(m) for m in model.modules()]
    dry = hwprofiles.conversion_report(model, READ_NOISE, exclude=["skip"])
    assert [type(m) for m in model.modules()] == before  # nothing converted
    with pytest.warns(hwprofiles.FloatLayerWarning) as caught:
        noisy, report = hwprofiles.to_noisy(model, READ_NOISE, exclude=["skip"], report=True)
    assert len(caught) == 1, "one warning for all the layers"
    message = str(caught[0].message)
    assert "'custom' (MyLinear: a subclass of Linear" in message and "mapping={MyLinear: NoisyLinear}" in message
    assert "'cell' (GRUCell: no noisy twin for this type" in message and "'skip'" not in message
    assert str(report) == str(dry)
    assert [(c.name, c.twin_type) for c in report.converted] == [
        ("conv", hwprofiles.nn.layers.NoisyConv2d),
        ("head", NoisyLinear),
    ]
    assert [(f.name, f.category) for f in report.left_float] == [
        ("custom", "subclass"),
        ("cell", "unsupported"),
        ("skip", "excluded"),
    ]
    table = str(report).splitlines()
    assert table[0].split() == ["layer", "float", "type", "noisy", "twin", "/", "why", "float"]
    assert table[2].split() == ["conv", "Conv2d", "NoisyConv2d"]
    assert table[-1].split()[:3] == ["skip", "Linear", "float:"]
    mapped = hwprofiles.to_noisy(model, READ_NOISE, exclude=["cell", "skip"], mapping={MyLinear: NoisyLinear})
    assert type(mapped.custom) is NoisyLinear


def test_strict_makes_a_float_matrix_layer_an_error_and_exclusion_is_silent() -> None:
    with pytest.raises(hwprofiles.ConversionError, match="'cell' \\(GRUCell"):
        hwprofiles.to_noisy(Mixed(), READ_NOISE, strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hwprofiles.to_noisy(Mixed(), READ_NOISE, exclude=["custom", "cell"], strict=True)
        hwprofiles.to_noisy(nn.Sequential(nn.Linear(2, 2), nn.MultiheadAttention(2, 1), nn.GRU(2, 2)), READ_NOISE)


def test_twins_keep_the_float_keys_and_go_back_to_float() -> None:
    model = nn.ModuleDict(
        {
            "attn": nn.MultiheadAttention(8, 2, kdim=4, vdim=4),
            "gru": nn.GRU(4, 4, bidirectional=True),
            "up": nn.ConvTranspose2d(2, 2, 2),
        }
    )
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020")
    keys = list(noisy.state_dict())
    assert [k for k in keys if not k.endswith("input_bound")] == list(model.state_dict())
    back = hwprofiles.to_clean(noisy)
    assert [type(m) for m in back.modules()] == [type(m) for m in model.modules()]
    assert type(back["attn"].out_proj) is nn.modules.linear.NonDynamicallyQuantizableLinear
    assert list(back.state_dict()) == list(model.state_dict())
