"""The analog path of one matrix product (NOISE-MODELS section 6), function by function.

Each function of :mod:`hwprofiles.nn.analog` is checked against what the document
says it must compute: weight normalisation, the DAC and ADC (clip, ``2^(b-1) - 1``
levels a side, straight-through gradient), the percentile that calibrates the input
bound, and the split of a product into tiles whose partial sums add up to the product.
Everything here is deterministic: results are compared exactly or to float64 rounding.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hwprofiles.lazy import optional_modules
from hwprofiles.nn import analog
from hwprofiles.noise import rng
from hwprofiles.profiles import ADC, DAC

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -- weight normalisation -----------------------------------------------------------------
def test_weight_max_per_channel_and_per_tensor() -> None:
    w = torch.tensor([[0.5, -2.0, 1.0], [0.25, 0.1, -0.3]], dtype=torch.float64)
    per_channel = analog.weight_max(w, per_channel=True)
    assert per_channel.shape == (2, 1)
    assert per_channel.flatten().tolist() == [2.0, 0.3]
    per_tensor = analog.weight_max(w, per_channel=False)
    assert per_tensor.dim() == 0 and float(per_tensor) == 2.0
    # a conv weight: max over every dimension but the output channel
    conv = torch.zeros(3, 2, 2, 2, dtype=torch.float64)
    conv[0, 1, 1, 0], conv[1, 0, 0, 1], conv[2, 1, 0, 0] = -4.0, 3.0, 0.5
    assert analog.weight_max(conv, per_channel=True).flatten().tolist() == [4.0, 3.0, 0.5]
    assert analog.weight_max(conv, per_channel=True).shape == (3, 1, 1, 1)
    # a bias-like 1-d tensor has no channels to take apart
    assert float(analog.weight_max(torch.tensor([1.0, -3.0]), per_channel=True)) == 3.0


def test_weight_max_of_an_all_zero_channel_is_tiny_not_zero() -> None:
    w = torch.zeros(2, 3, dtype=torch.float64)
    w[0, 0] = 1.0
    w_max = analog.weight_max(w, per_channel=True)
    assert float(w_max[1]) == 1e-12  # w / w_max stays 0, not nan
    assert torch.isfinite(w / w_max).all()
    assert float(analog.weight_max(torch.zeros(4), per_channel=False)) == pytest.approx(1e-12, rel=1e-6)


# -- the input bound from data --------------------------------------------------------------
def reference_percentile(x: torch.Tensor, percentile: float) -> float:
    """The k-th smallest |x| with k = ceil(p/100 n), clamped to 1 <= k <= n (nearest rank)."""
    values = sorted(abs(float(v)) for v in x.flatten())
    n = len(values)
    k = min(n, max(1, math.ceil(percentile / 100.0 * n)))
    return values[k - 1]


@pytest.mark.parametrize("percentile", [50.0, 90.0, 99.0, 99.5, 99.99, 100.0])
@pytest.mark.parametrize("n", [1, 7, 1000, 12_345])
def test_percentile_abs_is_the_nearest_rank_percentile(percentile: float, n: int) -> None:
    x = torch.randn(n, generator=gen(n), dtype=torch.float64) * 3
    assert analog.percentile_abs(x, percentile) == pytest.approx(reference_percentile(x, percentile), rel=1e-6)


def test_percentile_abs_at_the_edge_between_its_two_methods() -> None:
    # n = 1000: the top-k path serves the highest n // 100 = 10 ranks; check both sides of it.
    x = torch.arange(1, 1001, dtype=torch.float64)[torch.randperm(1000, generator=gen(0))]
    for percentile, expected in [(99.0, 990.0), (99.05, 991.0), (98.85, 989.0), (98.95, 990.0), (0.01, 1.0)]:
        assert analog.percentile_abs(-x, percentile) == expected


def test_percentile_abs_of_a_very_large_tensor_subsamples_with_a_stride() -> None:
    # Above 2^20 elements every ceil(n / 2^20)-th element is taken; the result is the
    # percentile of that subsample.
    n = (1 << 20) + 1000
    x = torch.rand(n, generator=gen(1), dtype=torch.float64)
    sub = x[:: math.ceil(n / (1 << 20))]
    for percentile in (50.0, 99.9):
        assert analog.percentile_abs(x, percentile) == pytest.approx(
            float(sub.float().kthvalue(math.ceil(percentile / 100 * sub.numel())).values), rel=0, abs=0
        )
    # exactly 2^20 elements are taken whole
    y = torch.rand(1 << 20, generator=gen(2))
    assert analog.percentile_abs(y, 100.0) == float(y.max())


def test_percentile_abs_of_zeros_is_a_small_positive_bound() -> None:
    assert analog.percentile_abs(torch.zeros(100), 99.0) == 1e-8


# -- DAC and ADC ----------------------------------------------------------------------------
@pytest.mark.parametrize("bits, bound", [(1, 1.0), (2, 3.0), (4, 2.0), (8, 1.0)])
def test_dac_levels_step_and_clipping(bits: int, bound: float) -> None:
    levels = max(1, 2 ** (bits - 1) - 1)  # a side; 1 bit still keeps one level
    step = bound / levels
    x = torch.linspace(-2 * bound, 2 * bound, 2001, dtype=torch.float32)
    y = analog.dac(x, DAC(bits=bits, bound=bound), bound)
    expected = torch.round(x.clamp(-bound, bound) / step).clamp(-levels, levels) * step
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)
    assert y.unique().numel() == 2 * levels + 1
    assert float(y.max()) == pytest.approx(bound) and float(y.min()) == pytest.approx(-bound)


def test_dac_without_bits_only_clips() -> None:
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)
    torch.testing.assert_close(analog.dac(x, DAC(bits=None, bound=1.5), 1.5), x.clamp(-1.5, 1.5), rtol=0, atol=0)


@pytest.mark.parametrize("bits, bound", [(3, 2.0), (8, 10.0)])
def test_adc_levels_step_and_clipping(bits: int, bound: float) -> None:
    levels = 2 ** (bits - 1) - 1
    step = bound / levels
    y = torch.linspace(-3 * bound, 3 * bound, 3001, dtype=torch.float32)
    out = analog.adc(y, ADC(bits=bits, bound=bound), bound)
    expected = torch.round(y.clamp(-bound, bound) / step) * step
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert out.unique().numel() == 2 * levels + 1


def test_adc_without_bits_only_clips() -> None:
    y = torch.linspace(-30, 30, 101, dtype=torch.float64)
    torch.testing.assert_close(analog.adc(y, ADC(bits=None, bound=10.0), 10.0), y.clamp(-10, 10), rtol=0, atol=0)


@pytest.mark.parametrize("convert", ["dac", "adc"])
def test_converters_pass_gradients_straight_through_inside_the_bound(convert: str) -> None:
    bound = 2.0
    x = torch.tensor([-3.0, -1.99, -0.7, 0.0, 0.33, 1.99, 2.5], requires_grad=True)
    if convert == "dac":
        y = analog.dac(x, DAC(bits=4, bound=bound), bound)
    else:
        y = analog.adc(x, ADC(bits=4, bound=bound), bound)
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]


@pytest.fixture(params=["numba", "torch"])
def quantise_with(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both no-grad paths of analog.fake_quantize: the numba kernel and the torch passes."""
    if request.param == "torch":
        monkeypatch.setitem(optional_modules, analog.NUMBA_KERNELS, None)
    else:
        assert analog._numba_kernels() is not None
    return str(request.param)


@pytest.mark.parametrize("qmin, qmax", [(-127, 127), (-7, 7), (-1, 1), (0, 255), (0, 15)])
@pytest.mark.parametrize("scale", [1e-4, 0.0123, 1 / 127, 0.5, 3.0, 77.7])
def test_fake_quantize_gives_torchs_numbers_and_gradient(
    quantise_with: str, scale: float, qmin: int, qmax: int
) -> None:
    """The CPU fast paths against torch.fake_quantize_per_tensor_affine, bit for bit: random
    values, every step, every tie between steps (rounded half to even), both sides of the
    range, zeros and infinities."""
    steps = torch.arange(qmin - 3, qmax + 4, dtype=torch.float32)
    step32 = float(torch.tensor(scale, dtype=torch.float32))
    x = torch.cat(
        [
            torch.randn(20_000, generator=gen(int(scale * 1e4) + qmax)) * scale * (qmax - qmin) / 2,
            steps * step32,
            (steps + 0.5) * step32,
            torch.tensor([0.0, -0.0, math.inf, -math.inf]),
        ]
    )
    reference = torch.fake_quantize_per_tensor_affine(x, scale, 0, qmin, qmax)
    with torch.no_grad():
        assert torch.equal(analog.fake_quantize(x, scale, qmin, qmax), reference)
    a = x[:-2].clone().requires_grad_(True)  # gradients of finite values
    b = x[:-2].clone().requires_grad_(True)
    out_a = analog.fake_quantize(a, scale, qmin, qmax)
    out_b = torch.fake_quantize_per_tensor_affine(b, scale, 0, qmin, qmax)
    assert torch.equal(out_a, out_b)
    weights = torch.randn(out_a.shape, generator=gen(1))
    (out_a * weights).sum().backward()
    (out_b * weights).sum().backward()
    assert torch.equal(a.grad, b.grad)


def test_fake_quantize_keeps_a_nan_visible(quantise_with: str) -> None:
    # torch's kernel turns NaN into the lowest level, which hides a broken activation
    assert math.isnan(float(analog.fake_quantize(torch.tensor([math.nan]), 0.1, -7, 7)[0]))


def test_fake_quantize_splits_a_large_tensor_over_threads_with_the_same_numbers() -> None:
    x = torch.randn(3 * rng.PARALLEL_MIN_ELEMENTS + 5, generator=gen(4))
    reference = torch.fake_quantize_per_tensor_affine(x, 0.01, 0, -127, 127)
    torch.set_num_threads(2)  # the one_thread fixture restores one thread
    with torch.no_grad():
        assert torch.equal(analog.fake_quantize(x, 0.01, -127, 127), reference)


def test_adc_bound_per_row_scales_with_the_rows_in_use() -> None:
    assert analog.adc_bound(ADC(bound=0.5, per_row=True), 150) == 75.0
    assert analog.adc_bound(ADC(bound=0.5, per_row=False), 150) == 0.5
    assert analog.adc_bound(ADC(bound=10.0), 1) == 10.0


# -- tiles ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fan_in, rows, tiles",
    [
        (10, None, 1),
        (0, 4, 1),
        (1, 4, 1),
        (4, 4, 1),
        (5, 4, 2),
        (512, 512, 1),
        (513, 512, 2),
        (1200, 255, 5),
    ],
)
def test_n_tiles(fan_in: int, rows: int | None, tiles: int) -> None:
    assert analog.n_tiles(fan_in, rows) == tiles


@pytest.mark.parametrize("fan_in, tiles", [(12, 1), (12, 3), (10, 3), (7, 2), (5, 5)])
def test_linear_tiles_split_the_inputs_evenly_into_contiguous_blocks(fan_in: int, tiles: int) -> None:
    x = torch.randn(2, 3, fan_in, generator=gen(0), dtype=torch.float64)
    w = torch.randn(4, fan_in, generator=gen(1), dtype=torch.float64)
    parts = analog.linear_tiles(x, w, tiles)
    assert parts.shape == (2, 3, tiles, 4)
    rows = math.ceil(fan_in / tiles)
    for t in range(tiles):
        block = slice(t * rows, min(fan_in, (t + 1) * rows))
        torch.testing.assert_close(parts[..., t, :], x[..., block] @ w[:, block].T)
    torch.testing.assert_close(parts.sum(dim=-2), x @ w.T)


@pytest.mark.parametrize("channels, groups, tiles", [(6, 1, 1), (6, 1, 2), (7, 1, 3), (8, 2, 2), (6, 3, 2)])
def test_conv_tiles_split_each_groups_channels_evenly(channels: int, groups: int, tiles: int) -> None:
    out = 2 * groups
    x = torch.randn(2, channels, 5, 5, generator=gen(2), dtype=torch.float64)
    w = torch.randn(out, channels // groups, 3, 3, generator=gen(3), dtype=torch.float64)
    args = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 1)}
    parts = analog.conv_tiles(x, w, tiles, groups, F.conv2d, **args)
    full = F.conv2d(x, w, None, groups=groups, **args)
    o_g, c_g = out // groups, channels // groups
    assert parts.shape == (2, groups, tiles, o_g, *full.shape[2:])
    torch.testing.assert_close(parts.sum(dim=2).flatten(1, 2), full)
    c_t = math.ceil(c_g / tiles)
    for g in range(groups):
        for t in range(tiles):
            block = slice(t * c_t, min(c_g, (t + 1) * c_t))
            xg = x[:, g * c_g : (g + 1) * c_g][:, block]
            wg = w[g * o_g : (g + 1) * o_g][:, block]
            expected = F.conv2d(xg, wg, None, **args) if xg.shape[1] else torch.zeros_like(parts[:, g, t])
            torch.testing.assert_close(parts[:, g, t], expected)


def test_conv1d_tiles() -> None:
    x = torch.randn(3, 5, 9, generator=gen(4), dtype=torch.float64)
    w = torch.randn(4, 5, 3, generator=gen(5), dtype=torch.float64)
    parts = analog.conv_tiles(x, w, 2, 1, F.conv1d, stride=1, padding=1, dilation=1)
    assert parts.shape == (3, 1, 2, 4, 9)
    torch.testing.assert_close(parts[:, 0, 0], F.conv1d(x[:, :3], w[:, :3], padding=1))
    torch.testing.assert_close(parts[:, 0, 1], F.conv1d(x[:, 3:], w[:, 3:], padding=1))


def test_channel_view_broadcasts_along_the_channel_dimension() -> None:
    per_channel = torch.tensor([1.0, 2.0, 3.0]).reshape(3, 1, 1, 1)
    assert analog.channel_view(per_channel, 4, 1).shape == (1, 3, 1, 1)
    assert analog.channel_view(per_channel, 3, 2).shape == (1, 1, 3)
    assert analog.channel_view(per_channel, 3, 2).flatten().tolist() == [1.0, 2.0, 3.0]
    scalar = torch.tensor(2.5)
    assert analog.channel_view(scalar, 4, 1) is scalar
