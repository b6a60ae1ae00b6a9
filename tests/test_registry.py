"""The noise-model registry: register / get / list, and the errors users see."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

import hwprofiles
from hwprofiles import NoiseEntry
from hwprofiles.errors import DuplicateNoiseModelError, PluginError, UnknownNoiseModelError
from hwprofiles.registry import noise_models, register_noise_model

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

# Loads the plugins once at collection so every registered kind becomes a test case.
REGISTERED = hwprofiles.list_noise_models()


class LabNoise(NoiseEntry):
    kind: Literal["lab_noise"] = "lab_noise"
    sigma: float = Field(0.1, ge=0, le=1, description="Std of the lab's noise.")


class OtherLabNoise(NoiseEntry):
    kind: Literal["lab_noise"] = "lab_noise"


def test_builtin_kinds_are_registered() -> None:
    assert {"gaussian_additive", "pcm_programming", "pcm_drift", "output_noise", "stuck_at"} <= set(REGISTERED)


def test_list_is_sorted_and_filters_with_fnmatch() -> None:
    assert hwprofiles.list_noise_models() == sorted(noise_models())
    assert hwprofiles.list_noise_models("pcm_*") == ["pcm_drift", "pcm_programming", "pcm_read_1f"]
    assert hwprofiles.list_noise_models("gaussian_[am]*") == ["gaussian_additive", "gaussian_multiplicative"]
    assert hwprofiles.list_noise_models("nothing*") == []


def test_register_then_get_and_list() -> None:
    before = hwprofiles.list_noise_models()
    model = register_noise_model(LabNoise, "lab_package.noise:LabNoiseKind", owner="lab")
    assert model.kind == "lab_noise"
    got = hwprofiles.get_noise_model("lab_noise")
    assert got is model
    assert (got.entry_model, got.owner) == (LabNoise, "lab")
    assert hwprofiles.list_noise_models() == sorted([*before, "lab_noise"])
    assert hwprofiles.list_noise_models("lab_*") == ["lab_noise"]


def test_a_new_kind_is_usable_in_profiles_at_once() -> None:
    data = {"name": "x", "technology": "generic", "description": "d", "noise": [{"kind": "lab_noise", "sigma": 0.2}]}
    with pytest.raises(hwprofiles.ProfileError, match="unknown noise kind 'lab_noise'"):
        hwprofiles.parse_profile(data)
    register_noise_model(LabNoise, "lab_package.noise:LabNoiseKind", owner="lab")
    profile = hwprofiles.parse_profile(data)
    assert isinstance(profile.noise[0], LabNoise)
    assert profile.noise[0].sigma == 0.2
    assert "lab_noise" in hwprofiles.profile_json_schema()["properties"]["noise"]["items"]["discriminator"]["mapping"]


def test_unknown_kind_lists_valid_kinds_and_close_matches() -> None:
    with pytest.raises(UnknownNoiseModelError) as info:
        hwprofiles.get_noise_model("pcm_drfit")
    message = str(info.value)
    assert message.startswith("unknown noise kind 'pcm_drfit'. Did you mean 'pcm_drift'")
    assert message.endswith(f"Valid kinds: {', '.join(REGISTERED)}.")
    assert isinstance(info.value, KeyError), "callers may catch it as a KeyError"


def test_unknown_kind_far_from_any_says_no_match() -> None:
    with pytest.raises(UnknownNoiseModelError) as info:
        hwprofiles.get_noise_model("zzzzzz")
    assert "Did you mean" not in str(info.value)
    assert "Valid kinds: " in str(info.value)


def test_duplicate_kind_from_two_owners_names_both() -> None:
    register_noise_model(LabNoise, "a:A", owner="lab-a")
    with pytest.raises(DuplicateNoiseModelError) as info:
        register_noise_model(OtherLabNoise, "b:B", owner="lab-b")
    assert "noise kind 'lab_noise' is registered twice" in str(info.value)
    assert "'lab-a'" in str(info.value) and "'lab-b'" in str(info.value)
    assert hwprofiles.get_noise_model("lab_noise").owner == "lab-a", "the first registration stays"


def test_duplicate_of_a_builtin_kind_is_refused() -> None:
    class MyOutputNoise(NoiseEntry):
        kind: Literal["output_noise"] = "output_noise"

    hwprofiles.list_noise_models()
    with pytest.raises(DuplicateNoiseModelError, match="'builtin' and by plugin 'mine'"):
        register_noise_model(MyOutputNoise, "m:M", owner="mine")


def test_entry_model_without_literal_default_is_rejected() -> None:
    class NoDefault(NoiseEntry):
        kind: Literal["no_default"]  # type: ignore[assignment]

    with pytest.raises(TypeError, match=r"NoDefault.kind needs a Literal type and a default"):
        register_noise_model(NoDefault, "m:M")


def test_entry_model_must_be_a_noise_entry() -> None:
    class NotAnEntry:
        kind = "not_an_entry"

    with pytest.raises(TypeError, match="is not a hwprofiles.NoiseEntry subclass"):
        register_noise_model(NotAnEntry, "m:M")  # type: ignore[arg-type]


def test_implementation_string_resolves_on_first_use() -> None:
    model = register_noise_model(LabNoise, "collections:OrderedDict", owner="lab")
    from collections import OrderedDict

    assert model.implementation is OrderedDict


def test_implementation_that_cannot_be_imported_names_its_plugin() -> None:
    model = register_noise_model(LabNoise, "no_such_lab_module:LabNoiseKind", owner="lab")
    with pytest.raises(
        PluginError, match=r"plugin 'lab': the implementation 'no_such_lab_module:LabNoiseKind'"
    ) as info:
        _ = model.implementation
    assert info.value.plugin == "lab"


@pytest.mark.parametrize("kind", REGISTERED)
def test_registered_entry_models_follow_the_conventions(kind: str) -> None:
    model = hwprofiles.get_noise_model(kind)
    entry = model.entry_model
    assert entry.model_fields["kind"].default == kind, "the key is the kind literal's default"
    assert entry.model_config.get("extra") == "forbid", "a typo in a file must be an error"
    undocumented = [name for name, f in entry.model_fields.items() if not f.description and name != "kind"]
    assert undocumented == [], f"{entry.__name__} fields without description="
    assert isinstance(model._implementation, str), "a string keeps torch out of listing commands"
