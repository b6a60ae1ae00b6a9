"""Calibration is an explicit, saved step; non-finite values are refused or kept in their sample.

A calibrated DAC's input bound is set by ``hwprofiles.calibrate`` (or ``to_noisy(...,
calibration=...)``) from representative data, lives in the model's state dict, and is
never moved by whatever batch is evaluated first.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn as nn
from helpers import make_profile

import hwprofiles
from hwprofiles.nn import analog
from hwprofiles.nn.convert import analog_products

pytestmark = pytest.mark.usefixtures("one_thread")


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).eval()


G = torch.Generator().manual_seed(1)
TRAIN = [torch.randn(64, 64, generator=G) for _ in range(4)]
TEST = torch.randn(256, 64, generator=G)
TINY = 0.01 * torch.randn(1, 64, generator=G)  # one sample, far smaller than the data


def bounds(model: nn.Module) -> list[float]:
    return [m.bound for m in analog_products(model)]


@torch.no_grad()
def relative_error(noisy: nn.Module, model: nn.Module, seed: int = 0) -> float:
    hwprofiles.program(noisy, seed=seed)
    y, clean = noisy(TEST), model(TEST)
    return float((y - clean).norm() / clean.norm())


# -- the bound is set by calibration only ----------------------------------------------------
def test_a_tiny_first_batch_changes_neither_the_bound_nor_the_error() -> None:
    model = mlp()
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020", calibration=TRAIN).eval()
    calibrated = bounds(noisy)
    assert all(b > 0 for b in calibrated)
    representative = relative_error(noisy, model)
    with torch.no_grad():
        noisy(TINY)  # an unrepresentative first batch at evaluation
    assert bounds(noisy) == calibrated
    assert relative_error(noisy, model) == representative
    assert representative < 0.3  # measured 0.17
    # What is at stake: a bound taken from that one sample clips nearly every input.
    from_tiny = hwprofiles.to_noisy(model, "pcm-joshi2020", calibration=[TINY]).eval()
    assert relative_error(from_tiny, model) > 0.9  # measured 0.99


def test_calibrate_takes_the_largest_percentile_over_the_batches() -> None:
    noisy = hwprofiles.to_noisy(mlp(), "pcm-joshi2020").train()
    assert hwprofiles.calibrate(noisy, TRAIN) is noisy
    assert noisy[0].mvm.bound == max(analog.percentile_abs(x, 99.99) for x in TRAIN)
    assert noisy.training  # back in the mode it was in


def test_an_uncalibrated_model_refuses_to_evaluate_and_says_how_to_calibrate() -> None:
    noisy = hwprofiles.to_noisy(mlp(), "pcm-joshi2020").eval()
    with pytest.raises(hwprofiles.NotCalibratedError) as info:
        with torch.no_grad():
            noisy(TEST)
    message = str(info.value)
    assert "layer '0'" in message and "pcm-joshi2020" in message
    assert "hwprofiles.calibrate(model, training_batches)" in message and "calibration=" in message
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, hwprofiles.HwProfilesError)


def test_training_keeps_a_running_estimate_and_fixed_bounds_need_no_calibration() -> None:
    noisy = hwprofiles.to_noisy(mlp(), "pcm-joshi2020").train()
    noisy(TRAIN[0])
    after_one = bounds(noisy)
    assert all(b > 0 for b in after_one)
    noisy(3 * TRAIN[1])
    assert bounds(noisy)[0] > after_one[0]  # follows the data
    with torch.no_grad():
        assert torch.isfinite(noisy.eval()(TEST)).all()
    fixed = make_profile([], dac={"bits": 8, "bound": 3.0, "bound_mode": "fixed"})
    with torch.no_grad():
        assert torch.isfinite(hwprofiles.to_noisy(mlp(), fixed).eval()(TEST)).all()


def test_calibration_batches_must_be_finite_and_present() -> None:
    noisy = hwprofiles.to_noisy(mlp(), "pcm-joshi2020")
    bad = TRAIN[1].clone()
    bad[5, 3] = float("nan")
    with pytest.raises(
        ValueError, match=r"calibration batch 1 holds 1 non-finite value\(s\) \(NaN or inf\) in sample\(s\) 5"
    ):
        hwprofiles.calibrate(noisy, [TRAIN[0], bad])
    with pytest.raises(ValueError, match="at least one batch"):
        hwprofiles.calibrate(noisy, [])


# -- the bound is saved ------------------------------------------------------------------------
def test_a_calibrated_model_reloads_with_its_bounds_and_outputs() -> None:
    model = mlp()
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020", calibration=TRAIN).eval()
    buffer = io.BytesIO()
    torch.save(noisy.state_dict(), buffer)
    buffer.seek(0)
    again = hwprofiles.to_noisy(model, "pcm-joshi2020").eval()
    again.load_state_dict(torch.load(buffer, weights_only=True))
    assert bounds(again) == bounds(noisy)
    hwprofiles.program(noisy, seed=4)
    hwprofiles.program(again, seed=4)
    with torch.no_grad():
        assert torch.equal(again(TEST), noisy(TEST))


def test_a_float_checkpoint_loads_into_a_twin_which_is_then_uncalibrated() -> None:
    model = mlp()
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020", calibration=TRAIN).eval()
    noisy.load_state_dict(model.state_dict())  # strict: the bounds may be missing
    assert bounds(noisy) == [0.0, 0.0]
    with pytest.raises(hwprofiles.NotCalibratedError):
        with torch.no_grad():
            noisy(TEST)


def test_a_nit_state_dict_loads_into_the_float_model_for_evaluation() -> None:
    from hwprofiles.train import TrainConfig
    from hwprofiles.train.methods import model_for_evaluation

    noisy = hwprofiles.to_noisy(mlp(), "pcm-joshi2020", calibration=TRAIN)
    assert any(k.endswith("input_bound") for k in noisy.state_dict())
    config = TrainConfig(model="mlp", dataset="synthetic", method="nit", profile="pcm-joshi2020")
    fresh = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    loaded = model_for_evaluation(fresh, noisy.state_dict(), config)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in mlp().state_dict().items())


def test_resume_reads_the_bounds_of_checkpoints_written_before_they_were_buffers(tmp_path) -> None:
    from hwprofiles.data import load_dataset
    from hwprofiles.train import TrainConfig, load_checkpoint, loop, train
    from hwprofiles.train.checkpoint import save_checkpoint

    synthetic = load_dataset("synthetic", seed=0, train_subset=256, test_subset=64)
    cfg = TrainConfig(
        model="lenet5",
        dataset="synthetic",
        width=0.5,
        epochs=2,
        batch_size=64,
        lr=5e-3,
        seed=3,
        method="nit",
        profile="pcm-joshi2020",
    )
    train(cfg, tmp_path / "straight.pt", data=synthetic, progress=False)
    path = tmp_path / "old.pt"
    real_save = loop.save_checkpoint

    def save_then_stop(p, payload):
        real_save(p, payload)
        raise KeyboardInterrupt

    loop.save_checkpoint = save_then_stop
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, path, data=synthetic, progress=False)
    finally:
        loop.save_checkpoint = real_save
    # Rewrite the epoch-1 checkpoint as older versions wrote it: bounds beside the state dict.
    state = load_checkpoint(path)
    suffix = ".mvm.input_bound"
    state["input_bounds"] = {k[: -len(suffix)]: float(v) for k, v in state["state_dict"].items() if k.endswith(suffix)}
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if not k.endswith(suffix)}
    assert state["input_bounds"]
    save_checkpoint(path, {k: v for k, v in state.items() if k not in ("format", "version")})
    train(cfg, path, resume=True, data=synthetic, progress=False)
    straight, resumed = load_checkpoint(tmp_path / "straight.pt")["state_dict"], load_checkpoint(path)["state_dict"]
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


# -- non-finite values -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "profile", ["pcm-joshi2020", "photonic-mzi", "rram-neurram", "sram-cim-8bit", "gaussian-additive"]
)
def test_a_nan_in_one_sample_of_the_input_is_refused(profile: str) -> None:
    noisy = hwprofiles.to_noisy(mlp(), profile, calibration=TRAIN).eval()
    x = TEST[:8].clone()
    x[2, 7] = float("nan")
    x[6, 0] = float("inf")
    with pytest.raises(
        ValueError,
        match=r"holds 2 non-finite value\(s\) \(NaN or inf\) in sample\(s\) 2, 6 "
        r"\(index along dim 0, of 8\)",
    ):
        with torch.no_grad():
            noisy(x)


@pytest.mark.parametrize(
    ("values", "finite"),
    [
        ([1.0, -2.0, 3.0], True),
        ([3e38, 3e38, 3e38], True),  # finite values whose sum overflows
        ([1.0, float("nan")], False),
        ([float("inf"), 1.0], False),
        ([float("inf"), float("-inf")], False),
        ([-3e38, -3e38, float("nan")], False),
    ],
)
def test_all_finite_is_the_element_wise_test(values: list[float], finite: bool) -> None:
    assert analog.all_finite(torch.tensor(values)) is finite


def test_large_finite_inputs_are_accepted() -> None:
    noisy = hwprofiles.to_noisy(mlp(), "gaussian-additive").eval()
    x = torch.full_like(TEST[:8], 1e38)  # their sum overflows: only the element-wise test can pass them
    with torch.no_grad():
        assert noisy(x).shape[0] == 8


class PoisonFirstSample(nn.Module):
    """A layer whose output is NaN for sample 0 (a NaN made inside the network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros_like(x)
        mask[0] = float("nan")
        return x + mask


def test_a_nan_made_inside_the_network_stays_in_its_sample() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), PoisonFirstSample(), nn.Linear(64, 10))
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020").train()
    y = noisy(TRAIN[0])
    assert torch.isfinite(y[1:]).all()  # (sample 0 is what torch's DAC quantiser makes of NaN)
    assert all(math.isfinite(b) and b > 0 for b in bounds(noisy))  # the running estimate ignores it
    noisy.eval()
    clean = nn.Sequential(noisy[0], nn.Identity(), noisy[2])  # the same twins, without the poison
    hwprofiles.program(noisy, seed=1)
    with torch.no_grad():
        poisoned = noisy(TEST)
        hwprofiles.program(noisy, seed=1)
        unpoisoned = clean(TEST)
    assert torch.equal(poisoned[1:], unpoisoned[1:])


def test_percentile_ignores_nan_and_inf() -> None:
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    spoiled = torch.cat([x, torch.tensor([float("nan"), float("inf"), -float("inf")])])
    assert analog.percentile_abs(spoiled, 99.0) == analog.percentile_abs(x, 99.0)
    assert analog.percentile_abs(torch.full((4,), float("nan")), 99.0) == 1e-8


@pytest.mark.parametrize("t_s", [-1.0, float("nan"), float("inf")])
def test_program_refuses_a_time_that_is_not_a_time(t_s: float) -> None:
    noisy = hwprofiles.to_noisy(mlp(), "pcm-joshi2020")
    with pytest.raises(ValueError, match="t_inference_s must be a finite time in seconds >= 0"):
        hwprofiles.program(noisy, seed=0, t_inference_s=t_s)


@pytest.mark.parametrize("scale", [-0.5, float("nan"), float("inf")])
def test_noise_scales_must_be_finite_and_not_negative(scale: float) -> None:
    noisy = hwprofiles.to_noisy(mlp(), "gaussian-additive")
    match = "noise_scale must be a finite number >= 0"
    with pytest.raises(ValueError, match=match):
        hwprofiles.set_noise_scale(noisy, scale)
    with pytest.raises(hwprofiles.ProfileError, match=match):
        hwprofiles.load_profile("gaussian-additive").with_noise_scale(scale)
    with pytest.raises(ValueError, match=match):
        hwprofiles.set_profile(noisy, "pcm-joshi2020", noise_scale=scale)


# -- calibrated ADC ranges ----------------------------------------------------------------
def adc_profile(bound: float = 10.0, **dac: object) -> hwprofiles.Profile:
    return make_profile(
        [],
        adc={"bits": 8, "bound": bound, "bound_mode": "calibrated", "calibration_percentile": 100.0},
        dac=dac or None,
    )


def test_a_calibrated_adc_spans_the_largest_partial_sum_of_the_calibration_data() -> None:
    layer = nn.Linear(64, 10).eval()
    x = 0.05 * torch.randn(256, 64, generator=torch.Generator().manual_seed(3))  # partial sums well below 10
    noisy = hwprofiles.to_noisy(nn.Sequential(layer), adc_profile(), calibration=[x[:128], x[128:]])
    w = layer.weight.detach()
    partial = x @ (w / w.abs().amax(dim=1, keepdim=True)).T  # normalised units: no DAC, per-channel w_max
    assert noisy[0].mvm.adc_bound == pytest.approx(float(partial.abs().max()), rel=1e-6)
    # the ADC now resolves the outputs: error within half a step of the calibrated range
    step = noisy[0].mvm.adc_bound / 127
    with torch.no_grad():
        error = (noisy(x) - layer(x)) / w.abs().amax(dim=1)
        fixed = hwprofiles.to_noisy(nn.Sequential(layer), make_profile([], adc={"bits": 8, "bound": 10.0}))
        fixed_error = (fixed(x) - layer(x)) / w.abs().amax(dim=1)
    assert float(error.abs().max()) <= step / 2 * (1 + 1e-4)
    assert float(fixed_error.abs().max()) > 5 * float(error.abs().max())  # a fixed bound of 10 is coarse here


def test_the_adc_is_calibrated_after_the_dac_so_it_sees_the_final_input_bound() -> None:
    layer = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0]]))
    profile = adc_profile(bits=None, bound=1.0, bound_mode="calibrated", calibration_percentile=100.0)
    # the second batch raises the DAC bound to 10; the first batch's partial sum is then 1/10
    noisy = hwprofiles.to_noisy(
        nn.Sequential(layer), profile, calibration=[torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 10.0]])]
    )
    assert noisy[0].mvm.bound == pytest.approx(10.0)
    assert noisy[0].mvm.adc_bound == pytest.approx(0.1)


def test_a_calibrated_adc_range_never_exceeds_the_bound() -> None:
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(4))
    noisy = hwprofiles.to_noisy(mlp(), adc_profile(bound=0.05), calibration=[x])
    assert [m.adc_bound for m in analog_products(noisy)] == [pytest.approx(0.05)] * 2


def test_an_uncalibrated_adc_is_refused_and_training_follows_the_data() -> None:
    noisy = hwprofiles.to_noisy(mlp(), adc_profile())
    with pytest.raises(hwprofiles.NotCalibratedError, match=r"calibrated ADC .*adc.bound_mode: calibrated"):
        noisy(torch.randn(2, 64))
    noisy.train()
    noisy(torch.randn(32, 64))
    assert all(m.adc_bound > 0 for m in analog_products(noisy))


def test_the_adc_range_is_saved_loaded_and_stripped_with_the_model() -> None:
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(5))
    noisy = hwprofiles.to_noisy(mlp(), adc_profile(), calibration=[x])
    state = noisy.state_dict()
    assert sorted(k for k in state if k.endswith("adc_range")) == ["0.mvm.adc_range", "2.mvm.adc_range"]
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    fresh = hwprofiles.to_noisy(mlp(), adc_profile())
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert [m.adc_bound for m in analog_products(fresh)] == [m.adc_bound for m in analog_products(noisy)]
    with torch.no_grad():
        assert torch.equal(fresh(x), noisy(x))
    assert not any(k.endswith("adc_range") for k in hwprofiles.nn.mvm.strip_calibration(state))
    # a model under a fixed ADC keeps the keys of before: no adc_range
    assert not any("adc_range" in k for k in hwprofiles.to_noisy(mlp(), "pcm-joshi2020").state_dict())
