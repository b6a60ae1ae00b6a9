"""Training methods are registered objects: the built-ins, and those a plugin adds through
the hwprofiles_register_training_methods hook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn as nn
from test_cli_experiments import TRAIN

import hwprofiles
from hwprofiles.errors import HwProfilesError, PluginError, UnknownTrainingMethodError
from hwprofiles.train import (
    METHODS,
    NoiseSchedule,
    TrainConfig,
    TrainingMethod,
    TrainingMethodRegistrar,
    get_training_method,
    list_training_methods,
    load_checkpoint,
    register_training_method,
    train,
)
from hwprofiles.train.config import training_methods
from hwprofiles.train.loop import build_base_model
from hwprofiles.train.methods import NoiseInjection, Qat

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")


class FrozenFeatures(TrainingMethod):
    """Trains the last layer only (a plugin's method)."""

    def prepare(self, model: nn.Module, config: TrainConfig) -> nn.Module:
        params = list(model.parameters())
        for p in params[:-2]:  # all but the last layer's weight and bias
            p.requires_grad_(False)
        return model

    def label(self, config: TrainConfig) -> str:
        return "frozen-features"


class LabPlugin:
    def __init__(self, name: str = "frozen") -> None:
        self.name = name

    @hwprofiles.hookimpl
    def hwprofiles_register_training_methods(self, registry: TrainingMethodRegistrar) -> None:
        registry.add(self.name, FrozenFeatures())


@pytest.fixture
def install_plugin() -> Iterator:
    pm = hwprofiles.get_plugin_manager()
    names: list[str] = []

    def install(plugin: object, name: str) -> None:
        pm.register(plugin, name=name)
        names.append(name)
        training_methods().reset()  # the registry loads the methods again, now with this plugin

    yield install
    for name in names:
        pm.unregister(name=name)
    training_methods().reset()


def test_the_builtin_methods_are_registered_by_name() -> None:
    assert list_training_methods() == sorted(METHODS) == ["clean", "nit", "qat", "qat-learned", "vant"]
    assert {n: training_methods().entry(n).owner for n in METHODS} == dict.fromkeys(METHODS, "builtin")
    assert isinstance(get_training_method("qat-learned"), Qat) and get_training_method("qat-learned").learned
    assert isinstance(get_training_method("vant"), NoiseInjection)


def test_an_unknown_method_names_the_close_matches() -> None:
    with pytest.raises(UnknownTrainingMethodError, match="unknown training method 'nitt'. Did you mean 'nit'") as info:
        TrainConfig(method="nitt")
    assert isinstance(info.value, HwProfilesError)
    assert "Valid training methods: clean, nit, qat, qat-learned, vant" in str(info.value)


def test_the_cli_refuses_an_unknown_method_with_the_same_message(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli(*TRAIN, "--method", "qatt")
    assert result.exit_code != 0 and "Traceback" not in result.stdout + result.stderr
    assert "unknown training method 'qatt'. Did you mean 'qat'" in " ".join(result.stderr.split())
    assert not list(tmp_path.rglob("*.pt"))


def test_a_method_checks_its_own_arguments() -> None:
    with pytest.raises(HwProfilesError, match="method 'vant' trains under a profile: pass --profile NAME"):
        TrainConfig(method="vant")
    assert TrainConfig(method="vant", profile="gaussian-additive").label == "vant:gaussian-additive"
    assert TrainConfig(method="qat").label == "qat"


def test_the_noise_schedule_is_constant_or_a_linear_ramp() -> None:
    assert [NoiseSchedule(1.0).at(s) for s in (0, 5)] == [1.0, 1.0]
    assert [NoiseSchedule(2.0, ramp_steps=4).at(s) for s in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    config = TrainConfig(method="nit", profile="gaussian-additive", noise_scale=0.5, schedule="ramp", ramp_epochs=2)
    model = config.training_method.prepare(build_base_model(config, 1, 10), config)
    assert config.training_method.noise_schedule(model, config, steps_per_epoch=3) == NoiseSchedule(0.5, 6)
    assert get_training_method("qat").noise_schedule(model, config, 3) is None


def test_a_plugin_adds_a_method_through_hwprofiles_register_training_methods(
    install_plugin, synthetic, tmp_path
) -> None:
    install_plugin(LabPlugin(), "lab-plugin")
    assert "frozen" in list_training_methods() and training_methods().entry("frozen").owner == "lab-plugin"
    config = TrainConfig(
        model="lenet5", dataset="synthetic", method="frozen", width=0.5, epochs=1, batch_size=64, seed=1
    )
    assert config.label == "frozen-features"
    train(config, tmp_path / "m.pt", data=synthetic, progress=False)
    state = load_checkpoint(tmp_path / "m.pt")
    assert state["meta"]["config"]["method"] == "frozen"  # the checkpoint stores the name: plain data
    fresh = build_base_model(config, synthetic.in_channels, synthetic.num_classes).state_dict()
    trained = state["state_dict"]
    keys = list(fresh)
    assert all(torch.equal(fresh[k], trained[k]) for k in keys[:-2])  # frozen
    assert not torch.equal(fresh[keys[-2]], trained[keys[-2]])  # the last layer learned


def test_a_plugin_reusing_a_builtin_name_fails_naming_both(install_plugin) -> None:
    install_plugin(LabPlugin("nit"), "copycat")
    with pytest.raises(PluginError) as info:
        list_training_methods()
    message = str(info.value)
    assert "plugin 'copycat'" in message and "hook hwprofiles_register_training_methods" in message
    assert "training method 'nit' is registered twice: by plugin 'builtin' and by plugin 'copycat'" in message


def test_the_registry_reloads_with_a_new_plugin_manager() -> None:
    from hwprofiles.plugins import reset_plugin_manager

    register_training_method("frozen", FrozenFeatures(), owner="lab")
    assert "frozen" in list_training_methods()
    reset_plugin_manager()
    assert "frozen" not in list_training_methods()
    assert "nit" in list_training_methods()
