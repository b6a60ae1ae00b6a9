"""A noise site: one place in a model where a profile's noise acts, with its generators.

Each noisy layer (and, under ``placement: every_layer``, each other layer output)
owns one site. The site turns the profile's entries into kind instances, keeps
them grouped by stage, and holds two seeded random streams:

- the *static* stream draws a chip instance (re-seeded from the chip seed each time
  it is drawn, so one seed always gives one chip);
- the *read* stream draws per-read noise, advancing on every forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from hwprofiles.noise.base import STAGES, NoiseKind, StageContext
from hwprofiles.registry import get_noise_model

if TYPE_CHECKING:  # pragma: no cover
    from hwprofiles.profiles import Profile

DEFAULT_SEED = 0


def derive_seed(seed: int, index: int, stream: int) -> int:
    """A well-mixed 63-bit seed for stream ``stream`` of site ``index`` of chip ``seed``."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, index, stream]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


class NoiseSite:
    """The noise of one layer (or layer output) under one profile."""

    def __init__(self, profile: Profile, name: str, *, outputs_only: bool = False) -> None:
        self.name = name
        self.index = 0
        self.chip_seed = DEFAULT_SEED
        self.t_inference_s: float | None = None
        self.outputs_only = outputs_only
        self._generators: dict[tuple[str, torch.device], torch.Generator] = {}
        self.chip_version = 0  # bumped on every program(): cached chip instances go stale
        self.set_profile(profile)

    # -- profile -------------------------------------------------------------------
    def set_profile(self, profile: Profile) -> None:
        """Act under ``profile``: its kinds are built anew, and chip instances drawn afresh."""
        self.profile = profile
        kinds: list[NoiseKind] = [get_noise_model(e.kind).implementation(e, profile) for e in profile.noise]
        self.by_stage: dict[str, list[NoiseKind]] = {s: [k for k in kinds if s in k.stages] for s in STAGES}
        if self.outputs_only:
            self.by_stage = {s: (ks if s == "outputs" else []) for s, ks in self.by_stage.items()}
        self.scale = float(profile.noise_scale)
        self.chip_version += 1

    def set_scale(self, noise_scale: float) -> None:
        """Change only the global noise scale; the kinds built from the profile stay, so
        this is cheap enough for every training step. Chip instances are drawn afresh.

        Raises:
            ProfileError: (a ValueError) ``noise_scale`` is NaN, infinite or negative.
        """
        self.profile = self.profile.with_noise_scale(noise_scale)
        self.scale = float(self.profile.noise_scale)
        self.chip_version += 1

    @property
    def t_s(self) -> float:
        return self.profile.t_inference_s if self.t_inference_s is None else self.t_inference_s

    def has(self, stage: str) -> bool:
        return self.scale > 0 and bool(self.by_stage[stage])

    # -- randomness ----------------------------------------------------------------
    def seed(self, chip_seed: int, index: int, t_inference_s: float | None) -> None:
        self.chip_seed, self.index, self.t_inference_s = int(chip_seed), index, t_inference_s
        for (stream, _), gen in self._generators.items():
            gen.manual_seed(derive_seed(self.chip_seed, self.index, 1 if stream == "read" else 0))
        self.chip_version += 1

    def generator(self, stream: str, device: torch.device) -> torch.Generator:
        key = (stream, device)
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(derive_seed(self.chip_seed, self.index, 1 if stream == "read" else 0))
            self._generators[key] = gen
        elif stream == "static":
            gen.manual_seed(derive_seed(self.chip_seed, self.index, 0))  # one seed, one chip
        return gen

    def context(self, stream: str, like: torch.Tensor, training: bool, **extra: float) -> StageContext:
        return StageContext(
            generator=self.generator(stream, like.device),
            scale=self.scale,
            training=training,
            t_inference_s=self.t_s,
            g_max_us=self.profile.mapping.g_max_us,
            layer=self.name,
            **extra,  # type: ignore[arg-type]
        )

    def apply_outputs(self, y: torch.Tensor, training: bool) -> torch.Tensor:
        if not self.has("outputs"):
            return y
        ctx = self.context("read", y, training)
        for kind in self.by_stage["outputs"]:
            y = kind.outputs(y, ctx)
        return y

    def __deepcopy__(self, memo: dict) -> NoiseSite:
        # torch.Generator cannot be deep-copied; a copy starts its streams afresh from the seed.
        new = NoiseSite.__new__(NoiseSite)
        memo[id(self)] = new
        new.__dict__.update({k: v for k, v in self.__dict__.items() if k != "_generators"})
        new._generators = {}
        return new

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_generators"} | {"_generators": {}}
