"""The model zoo: every architecture builds for both image shapes, the registry verbs and errors, plugins."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import torch
import torch.nn as nn

import hwprofiles
from hwprofiles.errors import HwProfilesError, PluginError
from hwprofiles.models import (
    DuplicateModelError,
    UnknownModelError,
    get_model,
    get_model_entry,
    list_models,
    register_model,
    registered_models,
)
from hwprofiles.models import registry as model_registry
from hwprofiles.models.torchvision_zoo import adapt_first_conv

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

# Loads the plugins once at collection so every registered model becomes a test case.
REGISTERED = list_models()
SHAPES = [(1, 28), (3, 32)]  # Fashion-MNIST, CIFAR


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build(name: str, **kwargs: object) -> nn.Module:
    torch.manual_seed(0)
    return get_model(name, **kwargs)


def test_the_study_architectures_are_registered() -> None:
    assert {"lenet5", "vgg11", "vgg11_bn", "resnet20", "resnet18", "mobilenetv2", "mlp"} <= set(REGISTERED)
    assert all(entry.owner == "builtin" for entry in registered_models().values())


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize(("channels", "size"), SHAPES, ids=["1x28x28", "3x32x32"])
def test_model_gives_logits_for_both_image_shapes(name: str, channels: int, size: int) -> None:
    model = build(name, in_channels=channels, num_classes=10).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, channels, size, size))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", REGISTERED)
def test_num_classes_sets_the_outputs(name: str) -> None:
    model = build(name, in_channels=1, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 28, 28)).shape == (1, 7)


@pytest.mark.parametrize("name", REGISTERED)
def test_width_multiplier_changes_the_parameter_count(name: str) -> None:
    assert n_params(build(name, width=0.5)) < n_params(build(name)) < n_params(build(name, width=1.5))


@pytest.mark.parametrize("width", [0, -1.0])
def test_width_must_be_positive(width: float) -> None:
    with pytest.raises(ValueError, match="width must be a positive multiplier"):
        get_model("resnet20", width=width)


def test_same_seed_same_weights() -> None:
    a, b = build("resnet20"), build("resnet20")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_known_parameter_counts() -> None:
    # The architectures as published: ResNet-20 0.27 M, ResNet-18 11.2 M, LeNet-5 62 k.
    assert n_params(get_model("resnet20")) == 272_474
    assert n_params(get_model("resnet18")) == 11_173_962
    assert n_params(get_model("lenet5", in_channels=1)) == 61_706


def test_activations_are_modules() -> None:
    # Each activation is its own module, so QAT observers and every-layer noise see it:
    # ResNet-20 has one after the stem and two in each of its nine blocks.
    model = get_model("resnet20")
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 1 + 9 * 2


def test_list_is_sorted_and_filters_with_fnmatch() -> None:
    assert list_models() == sorted(registered_models())
    assert list_models("resnet*") == ["resnet18", "resnet20", "resnet32", "resnet56"]
    assert list_models("vgg11*") == ["vgg11", "vgg11_bn"]
    assert list_models("*_bn") == ["vgg11_bn"]
    assert list_models("nothing*") == []


def test_unknown_model_lists_valid_names_and_close_matches() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_model("resnet2")
    message = str(info.value)
    assert message.startswith("unknown model 'resnet2'. Did you mean 'resnet")
    assert f"Valid models: {', '.join(REGISTERED)};" in message
    assert "'torchvision:NAME'" in message
    assert isinstance(info.value, KeyError), "callers may catch it as a KeyError"
    assert isinstance(info.value, HwProfilesError)


def test_unknown_model_far_from_any_says_no_match() -> None:
    with pytest.raises(UnknownModelError) as info:
        get_model("zzzzzz")
    assert "Did you mean" not in str(info.value)


def test_unknown_torchvision_model_suggests_torchvision_names() -> None:
    with pytest.raises(UnknownModelError, match=r"Did you mean 'torchvision:resnet18'"):
        get_model("torchvision:resnet1800")


def lab_net(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


def other_net(*, in_channels: int = 3, num_classes: int = 10, width: float = 1.0) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))


def test_register_then_get_and_list() -> None:
    entry = register_model("lab_net", lab_net, owner="lab")
    assert get_model_entry("lab_net") is entry
    assert (entry.owner, entry.builder) == ("lab", lab_net)
    assert list_models("lab_*") == ["lab_net"]
    assert isinstance(get_model("lab_net"), nn.Sequential)
    assert register_model("lab_net", lab_net, owner="lab") is entry, "the same registration again is harmless"


def test_register_a_builder_by_its_import_path() -> None:
    register_model("small_mlp", "hwprofiles.models.perceptron:mlp", owner="lab")
    model = get_model("small_mlp", in_channels=1, hidden=(32,))
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_a_builder_that_cannot_be_imported_names_its_owner() -> None:
    register_model("ghost", "lab_package.nets:ghost", owner="lab")
    with pytest.raises(PluginError, match=r"plugin 'lab': the builder 'lab_package.nets:ghost' of model 'ghost'"):
        get_model("ghost")


def test_duplicate_model_from_two_owners_names_both() -> None:
    register_model("lab_net", lab_net, owner="lab-a")
    with pytest.raises(
        DuplicateModelError, match="model 'lab_net' is registered twice: by plugin 'lab-a' and by plugin 'lab-b'"
    ):
        register_model("lab_net", other_net, owner="lab-b")


@pytest.mark.parametrize("name", ["", "torchvision:lab", 3])
def test_bad_model_names_are_refused(name: object) -> None:
    with pytest.raises(ValueError, match="model name must be"):
        register_model(name, lab_net)  # type: ignore[arg-type]


class LabPlugin:
    """A plugin object adding one model through the hook, as an installed plugin would."""

    def __init__(self, name: str = "lab_net") -> None:
        self.name = name

    @hwprofiles.hookimpl
    def hwprofiles_register_models(self, registry: model_registry.ModelRegistrar) -> None:
        registry.add(self.name, lab_net)


@pytest.fixture
def install_plugin() -> Iterator:
    pm = hwprofiles.get_plugin_manager()
    names: list[str] = []

    def install(plugin: object, name: str) -> None:
        pm.register(plugin, name=name)
        names.append(name)
        model_registry.reset()  # the registry loads the models again, now with this plugin

    yield install
    for name in names:
        pm.unregister(name=name)
    model_registry.reset()


def test_a_plugin_adds_a_model_through_hwprofiles_register_models(install_plugin) -> None:
    assert "lab_net" not in list_models()
    install_plugin(LabPlugin(), "lab-plugin")
    assert "lab_net" in list_models()
    assert get_model_entry("lab_net").owner == "lab-plugin"
    assert get_model("lab_net")(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_a_plugin_reusing_a_builtin_name_fails_naming_both(install_plugin) -> None:
    install_plugin(LabPlugin("resnet20"), "copycat")
    with pytest.raises(PluginError) as info:
        list_models()
    message = str(info.value)
    assert "plugin 'copycat'" in message and "hook hwprofiles_register_models" in message
    assert "model 'resnet20' is registered twice: by plugin 'builtin' and by plugin 'copycat'" in message


def test_the_registry_reloads_with_a_new_plugin_manager() -> None:
    from hwprofiles.plugins import reset_plugin_manager

    register_model("lab_net", lab_net, owner="lab")
    reset_plugin_manager()
    assert "lab_net" not in list_models()
    assert "resnet20" in list_models()


def test_torchvision_model_takes_one_channel() -> None:
    model = build("torchvision:resnet18", in_channels=1, num_classes=10).eval()
    assert model.conv1.in_channels == 1
    assert (model.conv1.out_channels, model.conv1.kernel_size, model.conv1.stride) == (64, (7, 7), (2, 2))
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_torchvision_model_with_three_channels_is_left_as_built() -> None:
    model = build("torchvision:resnet18", num_classes=5)
    assert model.conv1.in_channels == 3
    assert model.fc.out_features == 5


def test_torchvision_model_takes_no_width() -> None:
    with pytest.raises(ValueError, match="takes no width multiplier"):
        get_model("torchvision:mobilenet_v2", width=0.5)


def test_adapted_pretrained_conv_sees_grey_as_its_rgb_copy() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    rgb_conv = model[0]
    grey = torch.randn(2, 1, 8, 8)
    expected = rgb_conv(grey.repeat(1, 3, 1, 1))
    adapt_first_conv(model, 1, pretrained=True)
    assert model[0].in_channels == 1
    torch.testing.assert_close(model[0](grey), expected)


def test_adapted_untrained_conv_keeps_the_init_scale() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 256, 3))
    std = float(model[0].weight.detach().std())
    adapt_first_conv(model, 5, pretrained=False)
    assert model[0].weight.shape == (256, 5, 3, 3)
    assert float(model[0].weight.detach().std()) == pytest.approx(std, rel=0.05)


@pytest.mark.parametrize("name", REGISTERED)
@pytest.mark.parametrize("profile", ["pcm-joshi2020", "gaussian-additive"])
def test_every_model_runs_as_a_noisy_twin(name: str, profile: str) -> None:
    model = build(name, in_channels=1, num_classes=10)
    noisy = hwprofiles.to_noisy(model, profile, calibration=[torch.randn(8, 1, 28, 28)]).eval()
    hwprofiles.program(noisy, seed=0)
    with torch.no_grad():
        logits = noisy(torch.randn(2, 1, 28, 28))
    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


def test_listing_models_imports_neither_torch_nor_torchvision(subprocess_env) -> None:
    code = (
        "import sys\n"
        "import hwprofiles.models as m\n"
        "assert 'resnet20' in m.list_models()\n"
        "assert 'torch' not in sys.modules, 'listing models imported torch'\n"
        "m.get_model('resnet20')\n"
        "assert 'torchvision' not in sys.modules, 'a zoo model imported torchvision'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=120
    )
    assert result.returncode == 0, result.stderr
