"""QAT twins: weight and activation levels, straight-through gradients, learned scales, round trip."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import hwprofiles
from hwprofiles.nn.qat import QatConv1d, QatConv2d, QatLinear, QatReLU, QatReLU6, bake_qat

STUDY_BITS = (4, 8, 16)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def small_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 5 * 5, 16),
        nn.ReLU6(),
        nn.Linear(16, 4),
    )


def levels(w: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """``w / step`` with ``step`` broadcast over output channels (dim 0)."""
    return w / step.reshape(-1, *([1] * (w.dim() - 1)))


# -- weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("bits", STUDY_BITS)
@pytest.mark.parametrize("conv_type", [nn.Conv1d, nn.Conv2d])
def test_conv_weights_are_int_b_per_output_channel(bits: int, conv_type: type[nn.Module]) -> None:
    q = hwprofiles.to_qat(nn.Sequential(conv_type(8, 16, 3)), bits=bits)[0]
    qmax = 2 ** (bits - 1) - 1
    w, wq, step = q.weight.detach(), q.quantized_weight().detach(), q.weight_step()
    assert step.shape == (16,)
    for c in range(16):
        assert wq[c].unique().numel() <= 2**bits - 1
    idx = levels(wq, step)
    assert torch.allclose(idx, idx.round(), atol=1e-3)
    assert idx.round().abs().max() == qmax
    # The largest |w| of each channel sits exactly on the top level, and that level is
    # max|w| up to the float32 rounding of (max|w| / qmax) * qmax (at most one ulp).
    top = wq.abs().flatten(1).amax(1)
    assert torch.equal(top, step * qmax)
    torch.testing.assert_close(top, w.abs().flatten(1).amax(1), rtol=2**-23, atol=0)


@pytest.mark.parametrize("bits", STUDY_BITS)
def test_linear_weights_are_int_b_per_tensor(bits: int) -> None:
    q = hwprofiles.to_qat(nn.Sequential(nn.Linear(64, 32)), bits=bits)[0]
    qmax = 2 ** (bits - 1) - 1
    w, wq, step = q.weight.detach(), q.quantized_weight().detach(), q.weight_step()
    assert step.numel() == 1
    assert wq.unique().numel() <= 2**bits - 1
    idx = wq / step
    assert torch.allclose(idx, idx.round(), atol=1e-3)
    assert idx.round().abs().max() == qmax
    assert wq.abs().max() == step * qmax
    torch.testing.assert_close(wq.abs().max(), w.abs().max(), rtol=2**-23, atol=0)


def test_four_bit_weights_use_all_fifteen_levels() -> None:
    q = hwprofiles.to_qat(nn.Sequential(nn.Linear(64, 64)), bits=4)[0]
    idx = (q.quantized_weight() / q.weight_step()).round().detach()
    assert set(idx.unique().tolist()) == set(range(-7, 8))


def test_weights_round_to_the_nearest_level() -> None:
    lin = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.3, -0.62]]))
    q = hwprofiles.to_qat(nn.Sequential(lin), bits=4)[0]  # step 1/7
    expected = torch.tensor([[7.0, 2.0, -4.0]]) / 7  # 0.3*7 = 2.1 -> 2; -0.62*7 = -4.34 -> -4
    torch.testing.assert_close(q.quantized_weight().detach(), expected)


def test_weight_step_follows_the_current_weights() -> None:
    q = hwprofiles.to_qat(nn.Sequential(nn.Linear(4, 4)), bits=8)[0]
    with torch.no_grad():
        q.weight.mul_(3)
    assert q.quantized_weight().abs().max() == q.weight_step() * 127
    torch.testing.assert_close(q.quantized_weight().abs().max(), q.weight.abs().max(), rtol=2**-23, atol=0)


def test_layer_forward_uses_the_quantized_weights() -> None:
    model = nn.Sequential(nn.Linear(8, 5), nn.Conv2d(2, 3, 3))
    q = hwprofiles.to_qat(model, bits=4)
    x = torch.randn(4, 8)
    torch.testing.assert_close(q[0](x), F.linear(x, q[0].quantized_weight(), q[0].bias))
    assert not torch.allclose(q[0](x), model[0](x), atol=1e-3)  # 4 bits do change the output
    img = torch.randn(2, 2, 6, 6)
    torch.testing.assert_close(q[1](img), F.conv2d(img, q[1].quantized_weight(), q[1].bias))


def test_all_zero_channel_stays_zero() -> None:
    conv = nn.Conv2d(2, 3, 3)
    with torch.no_grad():
        conv.weight[1].zero_()
    wq = hwprofiles.to_qat(nn.Sequential(conv))[0].quantized_weight()
    assert torch.isfinite(wq).all()
    assert (wq[1] == 0).all()


def test_weight_gradient_is_straight_through() -> None:
    q = hwprofiles.to_qat(nn.Sequential(nn.Linear(6, 3)), bits=4)[0]
    x = torch.randn(5, 6)
    q(x).pow(2).sum().backward()
    # The same loss with the quantized weights as a leaf: STE passes its gradient unchanged
    # (the step, taken from max|w|, is not differentiated through).
    wq = q.quantized_weight().detach().requires_grad_()
    F.linear(x, wq, q.bias.detach()).pow(2).sum().backward()
    torch.testing.assert_close(q.weight.grad, wq.grad)


# -- activations -----------------------------------------------------------------------


@pytest.mark.parametrize("bits", STUDY_BITS)
def test_relu_outputs_are_unsigned_multiples_of_act_scale(bits: int) -> None:
    scale = 0.25
    relu = hwprofiles.to_qat(nn.Sequential(nn.ReLU()), bits=bits, act_scale=scale)[0]
    top = scale * (2**bits - 1)  # 3.75, 63.75, 16383.75
    x = torch.cat([torch.randn(1000) * top, torch.tensor([-5.0, top + 0.1, 10 * top, 1e9])])
    y = relu(x)
    assert torch.equal(y / scale, (y / scale).round())
    assert y.min() == 0 and y.max() == top
    assert (y[x <= 0] == 0).all()
    assert (y[-3:] == top).all()  # saturates above the top level


def test_activations_round_to_the_nearest_level() -> None:
    relu = hwprofiles.to_qat(nn.Sequential(nn.ReLU()), bits=8, act_scale=0.5)[0]
    x = torch.tensor([0.1, 0.4, 1.65, 1.85, 0.5 * 200.3, 0.5 * 200.7])
    expected = torch.tensor([0.0, 0.5, 1.5, 2.0, 100.0, 100.5])
    assert torch.equal(relu(x), expected)
    # A step that is not a power of two: the same up to float32 rounding.
    relu = hwprofiles.to_qat(nn.Sequential(nn.ReLU()), bits=8, act_scale=0.3)[0]
    torch.testing.assert_close(relu(torch.tensor([0.3 * 5.2, 0.3 * 5.8])), torch.tensor([1.5, 1.8]))


def test_relu6_clips_at_six_then_quantizes() -> None:
    relu6 = hwprofiles.to_qat(nn.Sequential(nn.ReLU6()), bits=4, act_scale=1.0)[0]
    assert type(relu6) is QatReLU6
    assert torch.equal(relu6(torch.tensor([-1.0, 2.4, 2.6, 9.0])), torch.tensor([0.0, 2.0, 3.0, 6.0]))


def test_activation_gradient_passes_inside_the_range_only() -> None:
    relu = hwprofiles.to_qat(nn.Sequential(nn.ReLU()), bits=4, act_scale=1.0)[0]  # range [0, 15]
    x = torch.tensor([-1.0, 0.3, 7.6, 14.2, 15.6, 1000.0], requires_grad=True)
    relu(x).sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.0, 0.0]))


def test_functional_relu_is_not_quantized() -> None:
    class UsesFunctionalRelu(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(self.fc(x))

    y = hwprofiles.to_qat(UsesFunctionalRelu(), bits=4, act_scale=1.0)(torch.randn(16, 4))
    assert not torch.equal(y, y.round())  # documented limit: only ReLU modules are swapped


# -- the converter ---------------------------------------------------------------------


def test_conv_bn_relu_linear_model_is_converted_and_bn_left_float() -> None:
    model = small_cnn()
    q = hwprofiles.to_qat(model, bits=8, act_scale=0.5)
    assert [type(m) for m in q] == [QatConv2d, nn.BatchNorm2d, QatReLU, nn.Flatten, QatLinear, QatReLU6, QatLinear]
    bn_before, bn_after = model[1].state_dict(), q[1].state_dict()
    assert bn_before.keys() == bn_after.keys()
    assert all(torch.equal(bn_before[k], bn_after[k]) for k in bn_before)
    # BN output is not put on a grid: only the ReLU after it is.
    features = q[1](q[0](torch.randn(2, 3, 5, 5)))
    assert not torch.equal(features / 0.5, (features / 0.5).round())
    relu_out = q[2](features)
    assert torch.equal(relu_out / 0.5, (relu_out / 0.5).round())


def test_conv1d_is_swapped() -> None:
    q = hwprofiles.to_qat(nn.Sequential(nn.Conv1d(2, 3, 3)))
    assert type(q[0]) is QatConv1d
    assert q(torch.randn(1, 2, 7)).shape == (1, 3, 5)


def test_only_exact_types_are_swapped() -> None:
    class MyLinear(nn.Linear):
        pass

    class MyReLU(nn.ReLU):
        pass

    q = hwprofiles.to_qat(nn.Sequential(MyLinear(4, 4), MyReLU(), nn.Linear(4, 4), nn.ReLU()))
    assert [type(m) for m in q] == [MyLinear, MyReLU, QatLinear, QatReLU]


def test_exclude_leaves_named_modules_and_children_float() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.ReLU()))
    q = hwprofiles.to_qat(model, exclude=["1"])
    assert type(q[0]) is QatLinear
    assert type(q[1][0]) is nn.Linear and type(q[1][1]) is nn.ReLU


def test_converting_copies_unless_inplace() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    q = hwprofiles.to_qat(model)
    assert type(model[0]) is nn.Linear and q[0].weight is not model[0].weight
    same = hwprofiles.to_qat(model, inplace=True)
    assert same is model and type(model[0]) is QatLinear


def test_a_relu_registered_twice_becomes_one_twin() -> None:
    relu = nn.ReLU()
    q = hwprofiles.to_qat(nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu), learned=True)
    assert type(q[1]) is QatReLU and q[1] is q[3]
    q(torch.randn(8, 4)).sum().backward()  # one learned step, used twice in a forward
    assert q[1].act_scale.grad is not None


def test_a_linear_registered_twice_is_one_twin_there_and_back() -> None:
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    q = hwprofiles.to_qat(model, bits=4, learned=True)
    assert type(q[0]) is QatLinear and q[0] is q[2]
    assert [k for k in q.state_dict() if "scale" in k] == ["0.weight_scale", "1.act_scale", "2.weight_scale"]
    back = hwprofiles.from_qat(q)
    assert type(back[0]) is nn.Linear and back[0] is back[2]
    assert list(back.state_dict()) == list(model.state_dict())
    baked = bake_qat(q)
    assert type(baked[0]) is nn.Linear and baked[0] is baked[2]
    kept = hwprofiles.to_qat(model, exclude=["0"])  # matched by its first name, kept float under both
    assert type(kept[0]) is nn.Linear and kept[0] is kept[2]


def test_forward_hooks_are_kept() -> None:
    model = nn.Sequential(nn.Linear(4, 4))
    seen: list[torch.Size] = []
    model[0].register_forward_hook(lambda m, a, out: seen.append(out.shape))
    hwprofiles.to_qat(model)(torch.randn(2, 4))
    assert seen == [torch.Size([2, 4])]


@pytest.mark.parametrize(
    "kwargs", [{"bits": 1}, {"bits": 17}, {"bits": 8.0}, {"act_scale": 0.0}, {"act_scale": float("inf")}]
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="bits|act_scale"):
        hwprofiles.to_qat(nn.Sequential(nn.Linear(2, 2)), **kwargs)


def test_a_bare_layer_is_refused() -> None:
    with pytest.raises(TypeError, match="nn.Sequential"):
        hwprofiles.to_qat(nn.Linear(2, 2))


@pytest.mark.parametrize("learned", [False, True])
@pytest.mark.parametrize("bits", STUDY_BITS)
def test_every_study_bit_width_trains(bits: int, learned: bool) -> None:
    q = hwprofiles.to_qat(small_cnn(), bits=bits, act_scale=0.5, learned=learned)
    out = q(torch.randn(4, 3, 5, 5))
    out.sum().backward()
    assert out.shape == (4, 4) and torch.isfinite(out).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in q.parameters())


# -- round trip ------------------------------------------------------------------------


@pytest.mark.parametrize("learned", [False, True])
def test_from_qat_returns_the_float_model(learned: bool) -> None:
    model = small_cnn()
    q = hwprofiles.to_qat(model, bits=4, learned=learned)
    has_scales = any(k.endswith("_scale") for k in q.state_dict())
    assert has_scales == learned
    back = hwprofiles.from_qat(q)
    assert [type(m) for m in back.modules()] == [type(m) for m in model.modules()]
    before, after = model.state_dict(), back.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert type(q[0]) is QatConv2d  # from_qat copied


def test_from_qat_keeps_what_qat_training_learned() -> None:
    q = hwprofiles.to_qat(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), bits=4)
    opt = torch.optim.SGD(q.parameters(), lr=0.1)
    q(torch.randn(8, 4)).sum().backward()
    opt.step()
    trained = q[0].weight.detach().clone()
    back = hwprofiles.from_qat(q, inplace=True)
    assert back is q and type(back[0]) is nn.Linear and type(back[1]) is nn.ReLU
    assert torch.equal(back[0].weight, trained)  # the float weights, not their quantized form


# -- learned scales (LSQ) --------------------------------------------------------------


def test_learned_scales_start_where_fixed_ones_are() -> None:
    q = hwprofiles.to_qat(small_cnn(), bits=8, act_scale=0.5, learned=True)
    assert torch.equal(q[2].act_scale.detach(), torch.tensor([0.5]))
    expected = q[0].weight.detach().abs().flatten(1).amax(1) / 127
    torch.testing.assert_close(q[0].weight_scale.detach(), expected)
    assert q[4].weight_scale.shape == (1,)


def test_learned_activation_scale_gets_a_gradient_and_moves() -> None:
    q = hwprofiles.to_qat(nn.Sequential(nn.Linear(8, 8), nn.ReLU()), bits=4, act_scale=0.05, learned=True)
    opt = torch.optim.Adam(q.parameters(), lr=1e-2)
    before = q[1].act_scale.detach().clone()
    F.mse_loss(q(torch.randn(32, 8)), torch.rand(32, 8)).backward()
    assert q[1].act_scale.grad is not None and q[1].act_scale.grad.abs().item() > 0
    assert q[0].weight_scale.grad.abs().item() > 0
    opt.step()
    assert not torch.equal(q[1].act_scale.detach(), before)


@pytest.mark.parametrize("learned", [False, True])
def test_a_few_training_steps_lower_the_loss(learned: bool) -> None:
    x = torch.randn(128, 8)
    y = (x[:, :2].sum(1) > 0).long()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    q = hwprofiles.to_qat(model, bits=4, act_scale=0.25, learned=learned)
    opt = torch.optim.Adam(q.parameters(), lr=2e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(q(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
