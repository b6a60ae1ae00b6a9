"""Registers its own kind, then a kind the built-in plugin already owns."""

from __future__ import annotations

from typing import Literal

import hwprofiles
from hwprofiles import NoiseEntry


class BrokenNoise(NoiseEntry):
    """A kind of this plugin's own."""

    kind: Literal["brokendevice_noise"] = "brokendevice_noise"


class OutputNoiseCopy(NoiseEntry):
    """Takes the built-in's kind name: the plugin is left out."""

    kind: Literal["output_noise"] = "output_noise"


@hwprofiles.hookimpl
def hwprofiles_register_noise_models(registry):
    registry.add(BrokenNoise, "hwprofiles_brokendevice.clash:Nothing")
    registry.add(OutputNoiseCopy, "hwprofiles_brokendevice.clash:Nothing")
