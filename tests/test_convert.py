"""Converting models: to_noisy / to_clean / set_profile, every profile and kind on every
layer type, tiling, every-layer placement and the hwprofiles_swap_layer plugin hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn as nn
import torchvision
from helpers import make_profile

import hwprofiles
from hwprofiles.nn.layers import NoisyConv1d, NoisyConv2d, NoisyLayerMixin, NoisyLinear

# Small tensors: one thread avoids thread-pool overhead, which dominates on a loaded CPU.
pytestmark = pytest.mark.usefixtures("one_thread")

PROFILES = hwprofiles.list_profiles()
KINDS = hwprofiles.list_noise_models()

# Values for the fields a kind requires (or whose default leaves it without effect).
KIND_FIELDS: dict[str, dict[str, Any]] = {
    "gaussian_additive": {"sigma": 0.1},
    "gaussian_multiplicative": {"sigma": 0.1},
    "gaussian_combined": {"amplitude": 0.1, "ratio": 0.5},
    "output_noise": {"sigma": 0.04},
    "weight_read_noise": {"sigma": 0.02},
    "sram_column_noise": {"sigma_percent_fs": 0.39},
    "stuck_at": {"p_sa0": 0.02, "p_sa1": 0.02},
}


def kind_profile(kind: str) -> hwprofiles.Profile:
    """A profile holding only ``kind``, with default field values where it has them."""
    try:
        entry = hwprofiles.get_noise_model(kind).entry_model(**KIND_FIELDS.get(kind, {}))
    except ValueError as exc:
        pytest.fail(f"kind '{kind}' needs values for its required fields in KIND_FIELDS: {exc}")
    # rram_relaxation has data only at 1 s, 1 day and 2 days; the profile default (1 s) is one.
    return make_profile([entry.model_dump()], t_inference_s=1.0)


# One small model per layer type the engine swaps, with an input for it.
LAYERS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...], type]] = {
    "linear": (lambda: nn.Linear(16, 8), (4, 16), NoisyLinear),
    "conv2d": (lambda: nn.Conv2d(4, 6, 3, padding=1), (2, 4, 8, 8), NoisyConv2d),
    "conv2d_depthwise": (lambda: nn.Conv2d(6, 6, 3, padding=1, groups=6), (2, 6, 8, 8), NoisyConv2d),
    "conv1d": (lambda: nn.Conv1d(4, 6, 3), (2, 4, 16), NoisyConv1d),
}


def layer_case(layer: str) -> tuple[nn.Module, torch.Tensor, type]:
    make, shape, twin = LAYERS[layer]
    torch.manual_seed(0)
    return nn.Sequential(make()), torch.randn(shape, generator=torch.Generator().manual_seed(1)), twin


def assert_noisy_twin_works(model: nn.Module, x: torch.Tensor, twin: type, profile: hwprofiles.Profile) -> None:
    noisy = hwprofiles.to_noisy(model, profile, calibration=[x]).eval()
    assert type(noisy[0]) is twin
    with torch.no_grad():
        clean, y = model(x), noisy(x)
    assert y.shape == clean.shape and y.dtype == clean.dtype
    assert torch.isfinite(y).all()
    acts = bool(profile.noise) or profile.dac is not None or profile.adc is not None
    assert torch.equal(y, clean) is not acts, "the profile's noise must act, and only then"


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_converts_every_layer_type(profile: str, layer: str) -> None:
    model, x, twin = layer_case(layer)
    assert_noisy_twin_works(model, x, twin, hwprofiles.load_profile(profile))


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_converts_every_layer_type(kind: str, layer: str) -> None:
    model, x, twin = layer_case(layer)
    assert_noisy_twin_works(model, x, twin, kind_profile(kind))


@pytest.mark.parametrize("profile", ["pcm-joshi2020", "rram-hfox", "sram-cim-8bit", "gaussian-additive"])
def test_resnet18_converts(profile: str) -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    noisy = hwprofiles.to_noisy(model, profile, calibration=[x]).eval()
    twins = [m for m in noisy.modules() if isinstance(m, NoisyLayerMixin)]
    assert len(twins) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules()) == 21
    with torch.no_grad():
        y, clean = noisy(x), model(x)
    assert y.shape == (2, 10) and torch.isfinite(y).all()
    assert not torch.equal(y, clean)
    back = hwprofiles.to_clean(noisy)
    with torch.no_grad():
        assert torch.equal(back(x), clean)


# -- round trips and re-targeting ------------------------------------------------------------
def mixed_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, 5),
    )


MIXED_INPUT = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("profile", PROFILES)
def test_to_clean_undoes_to_noisy(profile: str) -> None:
    model = mixed_model().eval()
    noisy = hwprofiles.to_noisy(model, profile, calibration=[MIXED_INPUT]).eval()
    with torch.no_grad():
        noisy(MIXED_INPUT)  # program the chip and cache it, as a user would
    back = hwprofiles.to_clean(noisy)
    assert [(n, type(m)) for n, m in back.named_modules()] == [(n, type(m)) for n, m in model.named_modules()]
    assert list(back.state_dict()) == list(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
    assert not hasattr(back, "_hwprofiles")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in back.modules())
    with torch.no_grad():
        assert torch.equal(back(MIXED_INPUT), model(MIXED_INPUT))


def test_state_dict_keys_are_those_of_the_float_model_plus_input_bounds() -> None:
    model = mixed_model()
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020")
    keys = list(noisy.state_dict())
    assert [k for k in keys if not k.endswith(".mvm.input_bound")] == list(model.state_dict())
    assert [k for k in keys if k.endswith(".mvm.input_bound")] == [
        "0.mvm.input_bound",
        "3.mvm.input_bound",
        "6.mvm.input_bound",
    ]
    noisy.load_state_dict(model.state_dict())  # float checkpoints load into the twin (strict)


def test_set_profile_switches_without_reconversion() -> None:
    noisy = hwprofiles.to_noisy(mixed_model(), "pcm-joshi2020", calibration=[MIXED_INPUT]).eval()
    modules = list(noisy.modules())
    with torch.no_grad():
        before = noisy(MIXED_INPUT)
        hwprofiles.set_profile(noisy, "rram-neurram")
        after = noisy(MIXED_INPUT)
    assert [id(m) for m in noisy.modules()] == [id(m) for m in modules]
    assert not torch.equal(before, after)
    assert {m.noise_site.profile.name for m in noisy.modules() if isinstance(m, NoisyLayerMixin)} == {"rram-neurram"}


def test_set_profile_adds_and_removes_every_layer_noise() -> None:
    from hwprofiles.nn.convert import noise_sites

    noisy = hwprofiles.to_noisy(mixed_model(), "pcm-joshi2020")
    assert len(list(noise_sites(noisy))) == 3  # the three twins
    hwprofiles.set_profile(noisy, "gaussian-additive")
    assert len(list(noise_sites(noisy))) == 3 + 1 + 3  # + input, BN, ReLU, MaxPool
    hwprofiles.set_profile(noisy, "pcm-joshi2020")
    assert len(list(noise_sites(noisy))) == 3


def test_exclude_leaves_a_layer_float() -> None:
    model = mixed_model().eval()
    noisy = hwprofiles.to_noisy(model, "gaussian-additive", exclude=["0", "2"]).eval()
    assert type(noisy[0]) is nn.Conv2d and type(noisy[3]) is NoisyConv2d and type(noisy[6]) is NoisyLinear
    assert not noisy[2]._forward_hooks and noisy[1]._forward_hooks  # excluded ReLU, noisy BN
    seen: dict[str, torch.Tensor] = {}
    noisy[0].register_forward_hook(lambda m, args, out: seen.update(inp=args[0], out=out))
    with torch.no_grad():
        noisy(MIXED_INPUT)
        assert torch.equal(seen["out"], model[0](seen["inp"]))  # noise-free layer on a noisy input
        assert not torch.equal(seen["inp"], MIXED_INPUT)  # the input noise still acts


def test_inplace_false_leaves_the_original_untouched() -> None:
    model = mixed_model()
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    types = [type(m) for m in model.modules()]
    noisy = hwprofiles.to_noisy(model, "gaussian-additive")
    noisy.train()
    noisy(MIXED_INPUT).sum().backward()
    assert [type(m) for m in model.modules()] == types
    assert not hasattr(model, "_hwprofiles")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshot[key]), key
    assert all(p.grad is None for p in model.parameters())


def test_inplace_true_converts_the_model_itself() -> None:
    model = mixed_model()
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020", inplace=True)
    assert noisy is model and type(model[0]) is NoisyConv2d


def test_a_bare_layer_gives_its_twin() -> None:
    layer = nn.Linear(4, 2)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    noisy = hwprofiles.to_noisy(layer, "pcm-joshi2020", calibration=[x]).eval()
    assert type(noisy) is NoisyLinear and noisy.weight is not layer.weight  # a deep copy by default
    hwprofiles.program(noisy, seed=2)
    with torch.no_grad():
        y = noisy(x)
        assert y.shape == (8, 2) and not torch.equal(y, layer(x))
        hwprofiles.program(noisy, seed=2)
        assert torch.equal(noisy(x), y)
    back = hwprofiles.to_clean(noisy)
    assert type(back) is nn.Linear and list(back.state_dict()) == ["weight", "bias"]
    assert not back._forward_pre_hooks
    with torch.no_grad():
        assert torch.equal(back(x), layer(x))


class TwiceRegistered(nn.Module):
    """One Linear registered under two names (weight tying), used at both places."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.block = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
        self.block.append(self.first)  # registered again, as block.2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.act(self.first(x)))


def test_a_layer_registered_twice_becomes_one_twin_under_both_names() -> None:
    from hwprofiles.nn.convert import noise_sites

    model = TwiceRegistered()
    noisy, report = hwprofiles.to_noisy(model, "pcm-joshi2020", report=True)
    assert type(noisy.first) is NoisyLinear and noisy.block[2] is noisy.first
    assert [c.name for c in report.converted] == ["first", "block.0"]  # known by its first name
    assert [s.name for s in noise_sites(noisy)] == ["first", "block.0"]  # one site: one chip for both uses
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    noisy.train()(x).sum().backward()
    assert noisy.first.weight.grad is not None
    back = hwprofiles.to_clean(noisy)
    assert type(back.first) is nn.Linear and back.block[2] is back.first
    assert list(back.state_dict()) == list(model.state_dict())
    kept = hwprofiles.to_noisy(model, "pcm-joshi2020", exclude=["first"])
    assert type(kept.first) is nn.Linear and kept.block[2] is kept.first


@pytest.mark.parametrize("profile", ["pcm-joshi2020", "photonic-mzi", "gaussian-combined"])
def test_dtype_and_device_are_kept(profile: str) -> None:
    model = mixed_model().double()
    noisy = hwprofiles.to_noisy(model, profile, calibration=[MIXED_INPUT.double()]).eval()
    assert all(p.dtype == torch.float64 and p.device == torch.device("cpu") for p in noisy.parameters())
    with torch.no_grad():
        y = noisy(MIXED_INPUT.double())
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


def test_user_hooks_are_kept() -> None:
    model = mixed_model()
    calls: list[str] = []
    model[6].register_forward_pre_hook(lambda m, args: calls.append("pre"))
    model[6].register_forward_hook(lambda m, args, out: out * 0)
    noisy = hwprofiles.to_noisy(model, "pcm-joshi2020", calibration=[MIXED_INPUT]).eval()
    calls.clear()  # calibration ran one forward
    with torch.no_grad():
        assert torch.equal(noisy(MIXED_INPUT), torch.zeros(2, 5))
        assert torch.equal(hwprofiles.to_clean(noisy)(MIXED_INPUT), torch.zeros(2, 5))
    assert calls == ["pre", "pre"]


# -- every-layer placement ---------------------------------------------------------------------
def identity_linear(n: int) -> nn.Linear:
    layer = nn.Linear(n, n, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.eye(n))
    return layer


@pytest.mark.parametrize("placement, sites", [("every_layer", 3), ("matmul", 1)])
def test_every_layer_places_noise_at_input_linear_and_relu(placement: str, sites: int) -> None:
    # ReLU then an identity Linear on inputs far above 0: the output error is the sum of the
    # noise added at the input, after the ReLU and after the Linear.
    sigma = 0.1
    profile = make_profile([{"kind": "gaussian_additive", "sigma": sigma}], placement=placement)
    noisy = hwprofiles.to_noisy(nn.Sequential(nn.ReLU(), identity_linear(64)), profile).eval()
    x = torch.full((4000, 64), 10.0, dtype=torch.float64)
    with torch.no_grad():
        error = noisy(x) - x
    assert float(error.var()) == pytest.approx(sites * sigma**2, rel=0.02)


@pytest.mark.parametrize(
    "layer",
    [
        nn.BatchNorm1d(4),
        nn.ReLU(),
        nn.MaxPool1d(1),
        nn.AvgPool1d(1),
        nn.AdaptiveAvgPool1d(16),
    ],
    ids=lambda m: type(m).__name__,
)
def test_every_layer_adds_noise_after_normalisation_activation_and_pooling(layer: nn.Module) -> None:
    sigma = 0.1
    profile = make_profile([{"kind": "gaussian_additive", "sigma": sigma}], placement="every_layer")
    model = nn.Sequential(identity_linear(16), layer.double()).eval()  # `layer` is an identity here
    noisy = hwprofiles.to_noisy(model, profile).eval()
    x = torch.full((2000, 4, 16), 10.0, dtype=torch.float64)
    with torch.no_grad():
        error = noisy(x) - model(x)
    assert float(error.var()) == pytest.approx(3 * sigma**2, rel=0.02)  # input, Linear, `layer`


# -- tiling ---------------------------------------------------------------------------------------
def noise_free_tiled(rows: int) -> hwprofiles.Profile:
    """Tiles of ``rows`` rows and an ADC that neither rounds nor clips: only the tiling acts."""
    return make_profile([], adc={"bits": None, "bound": 1e6}, tile={"rows": rows})


def test_tiled_linear_equals_the_untiled_product() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 7)).double()
    noisy = hwprofiles.to_noisy(model, noise_free_tiled(16))
    assert noisy[0]._tiles() == 7
    x = torch.randn(5, 100, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(noisy(x), model(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "make_conv, shape, rows, tiles",
    [
        (lambda: nn.Conv2d(8, 16, 3, padding=1), (2, 8, 6, 6), 20, 4),
        (lambda: nn.Conv2d(8, 16, 3, padding=1, groups=2), (2, 8, 6, 6), 18, 2),
        (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8), (2, 8, 6, 6), 4, 1),  # a kernel is never split
        (lambda: nn.Conv2d(6, 4, 3, stride=2, dilation=2, padding=2, padding_mode="reflect"), (2, 6, 9, 9), 9, 6),
        (lambda: nn.Conv1d(6, 4, 3), (2, 6, 10), 6, 3),
    ],
    ids=["plain", "groups2", "depthwise", "stride-dilation-reflect", "conv1d"],
)
def test_tiled_conv_equals_the_float_conv(make_conv, shape: tuple[int, ...], rows: int, tiles: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(make_conv()).double()
    noisy = hwprofiles.to_noisy(model, noise_free_tiled(rows))
    assert noisy[0]._tiles() == tiles
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(noisy(x), model(x), rtol=1e-12, atol=1e-12)


def saturating(model: nn.Module, rows: int | None) -> nn.Module:
    tile = None if rows is None else {"rows": rows}
    return hwprofiles.to_noisy(model, make_profile([], adc={"bits": None, "bound": 1.5}, tile=tile))


def test_each_tile_saturates_on_its_own() -> None:
    # Four ones times four ones: one tile sums to 4 and saturates at 1.5; two tiles of 2 rows
    # saturate each at 1.5 and the digital sum is 3.
    linear = nn.Linear(4, 1, bias=False)
    conv = nn.Conv2d(4, 1, 1, bias=False)
    for layer, x in [(linear, torch.ones(1, 4)), (conv, torch.ones(1, 4, 1, 1))]:
        with torch.no_grad():
            layer.weight.fill_(1.0)
            assert float(saturating(nn.Sequential(layer), None)(x).flatten()[0]) == pytest.approx(1.5)
            assert float(saturating(nn.Sequential(layer), 2)(x).flatten()[0]) == pytest.approx(3.0)
            assert float(layer(x).flatten()[0]) == 4.0


def test_tiled_adc_outputs_are_whole_steps_of_each_tile() -> None:
    bits, bound = 4, 2.0
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 8, bias=False)).double()
    noisy = hwprofiles.to_noisy(model, make_profile([], adc={"bits": bits, "bound": bound}, tile={"rows": 16}))
    x = 2 * torch.randn(256, 32, dtype=torch.float64)
    with torch.no_grad():
        steps = noisy(x) / model[0].weight.abs().amax(dim=1) / (bound / (2 ** (bits - 1) - 1))
    torch.testing.assert_close(steps, steps.round(), rtol=0, atol=1e-5)  # the ADC rounds in float32
    assert steps.abs().max() <= 2 * (2 ** (bits - 1) - 1)  # two tiles of at most 7 steps a side
    assert steps.abs().max() > 2 ** (bits - 1) - 1  # and the sum does exceed one tile's range


# -- plugins ------------------------------------------------------------------------------------
class BilinearTwin(nn.Module):
    """A stand-in twin that a plugin supplies for nn.Bilinear."""

    def __init__(self, module: nn.Bilinear, profile: hwprofiles.Profile, name: str) -> None:
        super().__init__()
        self.inner, self.profile_name, self.name = module, profile.name, name

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.inner(a, b) + 1.0


class BilinearPlugin:
    @hwprofiles.hookimpl
    def hwprofiles_swap_layer(self, module: nn.Module, profile: hwprofiles.Profile, name: str) -> nn.Module | None:
        if type(module) is nn.Bilinear:
            return BilinearTwin(module, profile, name)
        return None


class Pair(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bilinear = nn.Bilinear(3, 4, 2)
        self.head = nn.Linear(2, 2)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.head(self.bilinear(a, b))


def test_plugin_swap_layer_hook_supplies_a_twin() -> None:
    pm = hwprofiles.get_plugin_manager()
    pm.register(BilinearPlugin(), name="test-bilinear-twin")
    try:
        noisy = hwprofiles.to_noisy(Pair(), "pcm-joshi2020")
    finally:
        pm.unregister(name="test-bilinear-twin")
    twin = noisy.bilinear
    assert isinstance(twin, BilinearTwin)
    assert (twin.profile_name, twin.name) == ("pcm-joshi2020", "bilinear")
    assert type(noisy.head) is NoisyLinear  # the built-in rules still swap the rest
    a, b = torch.randn(2, 3), torch.randn(2, 4)
    assert torch.equal(twin(a, b), twin.inner(a, b) + 1.0)
    with pytest.warns(hwprofiles.FloatLayerWarning, match="'bilinear' \\(Bilinear: no noisy twin"):
        assert type(hwprofiles.to_noisy(Pair(), "pcm-joshi2020").bilinear) is nn.Bilinear  # once unregistered


def test_a_converted_model_keeps_the_mode_of_the_float_model_in_every_part() -> None:
    # Before, the analog products inside the twins of an eval-mode model stayed in training
    # mode: every forward drew another chip and the DAC bounds followed the evaluated data.
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    noisy = hwprofiles.to_noisy(model, "rram-hfox")  # static noise only: one chip, one answer
    assert not any(m.training for m in noisy.modules())
    hwprofiles.calibrate(noisy, [x])
    hwprofiles.program(noisy, seed=1)
    with torch.no_grad():
        assert torch.equal(noisy(x), noisy(x)), "one chip instance: the same outputs"
    assert all(m.training for m in hwprofiles.to_noisy(model.train(), "pcm-joshi2020").modules())
