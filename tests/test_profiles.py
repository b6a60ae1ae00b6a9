"""The profile schema: shipped profiles, the JSON Schema, and the error text of bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

import hwprofiles
from hwprofiles.builtin import PROFILES_DIR
from hwprofiles.profiles import read_profile_file

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

SHIPPED = sorted(PROFILES_DIR.glob("*.yaml"))


def test_the_library_ships_profiles() -> None:
    assert len(SHIPPED) >= 10
    assert set(hwprofiles.list_profiles()) >= {p.stem for p in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_loads_and_round_trips(path: Path) -> None:
    profile = read_profile_file(path)
    assert profile.name == path.stem, "a shipped profile's file is named after the profile"
    assert hwprofiles.load_profile(profile.name) == profile
    assert hwprofiles.parse_profile(profile.model_dump()) == profile
    assert hwprofiles.parse_profile(profile.model_dump(mode="json")) == profile
    dumped = hwprofiles.dump_profile(profile)
    assert hwprofiles.parse_profile(yaml.safe_load(dumped)) == profile


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_cites_its_sources(path: Path) -> None:
    assert read_profile_file(path).references, f"{path.name} has no references"


@pytest.mark.parametrize("name", sorted(set(hwprofiles.list_profiles())), ids=str)
def test_every_shipped_profile_says_how_it_stands_against_published_chips(name: str) -> None:
    validation = hwprofiles.load_profile(name).validation
    assert validation, f"{name} has no validation entry"
    for entry in validation:
        # the schema insists; a published chip figure names its network, data and accuracy
        assert entry.not_validated or (entry.published and entry.reproduced)
        if entry.published is not None:
            assert 0 < entry.published.accuracy <= 1 and entry.published.network and entry.published.data


def test_a_validation_entry_must_give_both_figures_or_say_why_not() -> None:
    base = {"name": "x", "technology": "pcm", "description": "d"}
    published = {
        "source": "A chip paper.",
        "network": "ResNet-9",
        "data": "CIFAR-10",
        "conditions": "c",
        "accuracy": 0.9,
    }
    with pytest.raises(hwprofiles.ProfileError, match=r"lab.yaml: validation.0: .*'not_validated'"):
        hwprofiles.parse_profile({**base, "validation": [{"published": published}]}, source="lab.yaml")
    with pytest.raises(hwprofiles.ProfileError, match=r"validation.0.published.accuracy"):
        hwprofiles.parse_profile(
            {**base, "validation": [{"published": {**published, "accuracy": 93.7}, "not_validated": "pending"}]},
            source="lab.yaml",
        )
    ok = hwprofiles.parse_profile({**base, "validation": [{"published": published, "not_validated": "pending"}]})
    assert ok.validation[0].published.network == "ResNet-9" and not ok.stress


@pytest.fixture
def schema(cli) -> dict:
    result = cli("profiles", "schema")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_schema_command_prints_a_valid_json_schema(schema: dict) -> None:
    Draft202012Validator.check_schema(schema)
    kinds = schema["properties"]["noise"]["items"]["discriminator"]["mapping"]
    assert sorted(kinds) == hwprofiles.list_noise_models()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_validates_against_the_json_schema(schema: dict, path: Path) -> None:
    errors = [e.message for e in Draft202012Validator(schema).iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_json_schema_rejects_what_the_loader_rejects(schema: dict) -> None:
    validator = Draft202012Validator(schema)
    good = {"name": "x", "technology": "pcm", "description": "d", "noise": [{"kind": "output_noise", "sigma": 0.1}]}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "dac": {"bitz": 8}})
    assert not validator.is_valid({**good, "noise": [{"kind": "output_noise", "sigma": -1}]})
    assert not validator.is_valid({**good, "noise": [{"kind": "no_such_kind"}]})


# --- bad files: each is reported with its file name, the field path and a useful message

HEAD = "name: bad-profile\ntechnology: pcm\ndescription: A profile with one mistake.\n"

BAD_FILES = {
    "malformed_yaml": (HEAD + "dac: {bits: 8\n", ["line 5", "not valid YAML"]),
    "unknown_kind": (
        HEAD + "noise:\n  - kind: pcm_programing\n",
        [
            "noise.0: unknown noise kind 'pcm_programing'",
            "Did you mean 'pcm_programming'",
            "Valid kinds: ",
            "gaussian_additive, gaussian_combined",
        ],
    ),
    "missing_kind": (HEAD + "noise:\n  - sigma: 0.1\n", ["noise.0: missing 'kind'"]),
    "wrong_type": (HEAD + "tile: {rows: many}\n", ["tile.rows: Input should be a valid integer"]),
    "negative_sigma": (
        HEAD + "noise:\n  - kind: gaussian_additive\n    sigma: -0.1\n",
        ["noise.0.sigma: Input should be greater than or equal to 0"],
    ),
    "bits_out_of_range": (HEAD + "dac: {bits: 99}\n", ["dac.bits: Input should be less than or equal to 24"]),
    "missing_field": ("name: bad-profile\ntechnology: pcm\n", ["description: Field required"]),
    "unknown_key": (HEAD + "dac: {bitz: 8}\n", ["dac.bitz: unknown field"]),
    "unknown_top_level_key": (HEAD + "noise_scael: 2\n", ["noise_scael: unknown field"]),
    "nan": (
        HEAD + "noise:\n  - kind: gaussian_additive\n    sigma: .nan\n",
        ["noise.0.sigma: nan is not a finite number"],
    ),
    "inf": (HEAD + "noise_scale: .inf\n", ["noise_scale: inf is not a finite number"]),
    "empty_file": ("", ["the file is empty"]),
    "not_a_mapping": ("- name: a\n- name: b\n", ["expected a mapping", "got a list"]),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_validate_reports_a_bad_file(cli, tmp_path: Path, case: str) -> None:
    text, fragments = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = cli("profiles", "validate", path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "ok:" not in result.stdout
    assert result.stderr.startswith(f"error: {path}: ")
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.mark.parametrize("case", ["malformed_yaml", "unknown_kind", "negative_sigma", "empty_file"])
def test_show_of_a_bad_file_is_one_error_block(cli, tmp_path: Path, case: str) -> None:
    text, fragments = BAD_FILES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    result = cli("profiles", "show", path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {path}: ")
    assert fragments[0] in result.stderr
    assert "Traceback" not in result.output


def test_every_error_of_a_file_is_reported(cli, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(HEAD + "dac: {bits: 0}\nadc: {bits: 30}\nnoise:\n  - kind: output_noise\n    sigma: -1\n")
    result = cli("profiles", "validate", path)
    assert result.exit_code == 1
    for loc in ("dac.bits", "adc.bits", "noise.0.sigma"):
        assert f"{path}: {loc}: " in result.stderr


def test_duplicate_profile_name_across_two_dirs_names_both_files(cli, tmp_path: Path) -> None:
    first, second = tmp_path / "lab-a", tmp_path / "lab-b"
    for folder, stem in ((first, "mine"), (second, "theirs")):
        folder.mkdir()
        (folder / f"{stem}.yaml").write_text(HEAD.replace("bad-profile", "same-name"))
    result = cli("--profiles-dir", first, "--profiles-dir", second, "profiles", "list")
    assert result.exit_code == 2
    assert "two profiles are named 'same-name'" in result.stderr
    assert str(first / "mine.yaml") in result.stderr
    assert str(second / "theirs.yaml") in result.stderr
    assert "Traceback" not in result.output


def test_a_profile_may_not_take_a_shipped_name(cli, tmp_path: Path) -> None:
    (tmp_path / "copy.yaml").write_text(HEAD.replace("bad-profile", "ideal"))
    result = cli("--profiles-dir", tmp_path, "profiles", "show", "ideal")
    assert result.exit_code == 2
    assert str(PROFILES_DIR / "ideal.yaml") in result.stderr
    assert str(tmp_path / "copy.yaml") in result.stderr


def test_parse_profile_errors_name_the_source() -> None:
    with pytest.raises(hwprofiles.ProfileError, match=r"^lab.yaml: noise.0.sigma: "):
        hwprofiles.parse_profile(
            {"name": "x", "technology": "pcm", "description": "d", "noise": [{"kind": "output_noise", "sigma": -1}]},
            source="lab.yaml",
        )
