"""A test device: one noise kind and one profile, contributed through hwprofiles' hooks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

import hwprofiles
from hwprofiles import NoiseEntry


class TestdeviceNoise(NoiseEntry):
    """Gaussian weight noise of the test device."""

    kind: Literal["testdevice_noise"] = "testdevice_noise"
    sigma: float = Field(0.05, ge=0, le=1, description="Std of the weight noise, as a fraction of w_max.")


class TestNoise:
    """Stands in for the tensor implementation; never imported by listing or validating."""


@hwprofiles.hookimpl
def hwprofiles_register_noise_models(registry):
    registry.add(TestdeviceNoise, "hwprofiles_testdevice:TestNoise")


@hwprofiles.hookimpl
def hwprofiles_profile_paths():
    return [Path(__file__).parent / "profiles"]
