"""The hooks hwprofiles calls: this plugin's noise kinds and its profile directory.

Declared in ``pyproject.toml`` as ``[project.entry-points.hwprofiles] fefet =
"hwprofiles_fefet.plugin"``. The implementations are named as ``"module:Class"``
strings, so ``hwprofiles profiles list`` never imports torch.
"""

from __future__ import annotations

from pathlib import Path

from hwprofiles import hookimpl
from hwprofiles.registry import NoiseModelRegistrar
from hwprofiles_fefet.entries import FefetMultilevel, FefetRetention

PROFILES_DIR = Path(__file__).parent / "profiles"

KINDS = {
    FefetMultilevel: "hwprofiles_fefet.noise:FefetMultilevelNoise",
    FefetRetention: "hwprofiles_fefet.noise:FefetRetentionNoise",
}


@hookimpl
def hwprofiles_register_noise_models(registry: NoiseModelRegistrar) -> None:
    for entry_model, implementation in KINDS.items():
        registry.add(entry_model, implementation)


@hookimpl
def hwprofiles_profile_paths() -> list[Path]:
    return [PROFILES_DIR]
