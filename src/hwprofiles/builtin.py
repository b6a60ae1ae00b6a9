"""The built-in plugin: the core noise models, the shipped profile library and the model zoo.

It is declared in hwprofiles' own ``hwprofiles`` entry-point group and goes
through the same hooks as any third-party plugin. Implementations are named as
strings so that listing profiles (or models) never imports torch.
"""

from __future__ import annotations

from pathlib import Path

from hwprofiles.entries import gaussian, pcm, peripheral, photonic, rram, sram
from hwprofiles.hookspecs import ModelRegistry, NoiseModelRegistry, hookimpl

_KINDS = {
    gaussian.GaussianAdditive: "hwprofiles.noise.gaussian:GaussianAdditiveNoise",
    gaussian.GaussianMultiplicative: "hwprofiles.noise.gaussian:GaussianMultiplicativeNoise",
    gaussian.GaussianCombined: "hwprofiles.noise.gaussian:GaussianCombinedNoise",
    peripheral.OutputNoise: "hwprofiles.noise.peripheral:OutputNoiseKind",
    peripheral.WeightReadNoise: "hwprofiles.noise.peripheral:WeightReadNoiseKind",
    peripheral.StuckAt: "hwprofiles.noise.peripheral:StuckAtKind",
    pcm.PcmProgramming: "hwprofiles.noise.pcm:PcmProgrammingNoise",
    pcm.PcmDrift: "hwprofiles.noise.pcm:PcmDriftNoise",
    pcm.PcmRead1f: "hwprofiles.noise.pcm:PcmRead1fNoise",
    rram.RramRelaxation: "hwprofiles.noise.rram:RramRelaxationNoise",
    rram.RramCmo: "hwprofiles.noise.rram:RramCmoNoise",
    photonic.PhotonicPhase: "hwprofiles.noise.photonic:PhotonicPhaseNoise",
    photonic.Photodetector: "hwprofiles.noise.photonic:PhotodetectorNoise",
    sram.SramColumnNoise: "hwprofiles.noise.sram:SramColumnNoiseKind",
}

_MODELS = {
    "lenet5": "hwprofiles.models.lenet:lenet5",
    "mlp": "hwprofiles.models.perceptron:mlp",
    "mobilenetv2": "hwprofiles.models.mobilenet:mobilenetv2",
    "resnet18": "hwprofiles.models.resnet:resnet18",
    "resnet20": "hwprofiles.models.resnet:resnet20",
    "resnet32": "hwprofiles.models.resnet:resnet32",
    "resnet56": "hwprofiles.models.resnet:resnet56",
    "vgg11": "hwprofiles.models.vgg:vgg11",
    "vgg11_bn": "hwprofiles.models.vgg:vgg11_bn",
}

# The repository's profiles/ folder, shipped inside the package through a link.
PROFILES_DIR = Path(__file__).parent / "profile_data"


@hookimpl
def hwprofiles_register_noise_models(registry: NoiseModelRegistry) -> None:
    for entry_model, implementation in _KINDS.items():
        registry.add(entry_model, implementation)


@hookimpl
def hwprofiles_register_models(registry: ModelRegistry) -> None:
    for name, builder in _MODELS.items():
        registry.add(name, builder)


@hookimpl
def hwprofiles_profile_paths() -> list[Path]:
    return [PROFILES_DIR]
