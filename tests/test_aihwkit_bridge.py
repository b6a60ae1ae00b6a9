"""The aihwkit bridge: InferenceRPUConfig dicts to profiles and back, refusals with reasons."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import hwprofiles
from hwprofiles.aihwkit_bridge import from_aihwkit, read_aihwkit_file, to_aihwkit
from hwprofiles.errors import BridgeError

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

# What a profile -> aihwkit -> profile round trip loses, as docs/aihwkit-bridge.md lists it.
LOST_TOP = ("name", "description", "references", "validation", "stress")


def without_documented_losses(profile: hwprofiles.Profile) -> dict[str, Any]:
    data = profile.model_dump(mode="json")
    for key in LOST_TOP:
        data.pop(key)
    if not any(k.startswith(("pcm_", "rram_")) for k in profile.kinds()):
        data["technology"] = "generic"  # read from the device noise model; without one, generic
    if data["dac"] and data["dac"]["bound_mode"] == "calibrated":
        data["dac"]["calibration_percentile"] = 100.0  # ABS_MAX reads as the 100th percentile
    for entry in data["noise"]:
        entry.pop("note")
        if entry["kind"] == "output_noise" and entry["relative_to"] == "out_bound":
            entry.update(sigma=entry["sigma"] * data["adc"]["bound"], relative_to="absolute")
    return data


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats to 1e-12 relative (scales are divided and multiplied back)."""
    if isinstance(a, float) or isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"{path}: {a} != {b}"
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{path}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}.{i}")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def round_trip(profile: hwprofiles.Profile) -> hwprofiles.Profile:
    config = json.loads(json.dumps(to_aihwkit(profile)))  # as it would travel in a file
    return from_aihwkit(config, name=profile.name).profile


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("name", hwprofiles.list_profiles())
def test_every_shipped_profile_round_trips_or_is_refused_with_reasons(name: str) -> None:
    profile = hwprofiles.load_profile(name)
    try:
        back = round_trip(profile)
    except BridgeError as exc:
        assert exc.reasons, "a refusal says why"
        # Refused only for what aihwkit lacks: a kind outside its models (built-in or a plugin's), or the placement.
        expressible = {
            "pcm_programming",
            "pcm_drift",
            "pcm_read_1f",
            "rram_relaxation",
            "rram_cmo",
            "weight_read_noise",
            "output_noise",
        }
        kinds = set(profile.kinds()) - expressible
        assert any(k in r for r in exc.reasons for k in kinds) or any("placement" in r for r in exc.reasons)
        return
    assert back.name == profile.name
    assert_same(without_documented_losses(back), without_documented_losses(profile))


def test_the_expressible_shipped_profiles_are_the_analog_ones() -> None:
    expressible = set()
    for name in hwprofiles.list_profiles():
        try:
            to_aihwkit(hwprofiles.load_profile(name))
            expressible.add(name)
        except BridgeError:
            pass
    assert {"ideal", "pcm-joshi2020", "pcm-hermes", "rram-neurram"} <= expressible
    assert not {"rram-hfox", "sram-cim-8bit", "photonic-mzi", "gaussian-additive"} & expressible


def _profile(**fields: Any) -> hwprofiles.Profile:
    base = {"name": "lab", "technology": "pcm", "description": "A lab device."}
    return hwprofiles.parse_profile({**base, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(
            {
                "technology": "rram",
                "mapping": {"g_max_us": 90.0},
                "noise": [{"kind": "rram_cmo", "a": 0.0113, "b": 0.0112}],
            },
            id="cmo",
        ),
        pytest.param(
            {
                "noise": [{"kind": "pcm_drift", "nu_mean": 0.05, "nu_std": 0.01, "compensation": False}],
                "t_inference_s": 86400,
            },
            id="fixed-nu-drift",
        ),
        pytest.param(
            {
                "mapping": {"g_max_us": 30.0, "scale": "per_tensor"},
                "noise": [
                    {"kind": "pcm_programming", "coefficients_us": [0.2, 1.0, -0.5], "g_max_ref_us": 20.0},
                    {"kind": "pcm_read_1f", "q_coefficient": 0.0176, "q_max": 0.4, "t_read_s": 1e-6},
                ],
            },
            id="scaled-read-noise",
        ),
        pytest.param(
            {
                "dac": {"bits": 6, "bound": 2.0},
                "adc": None,
                "tile": {"rows": 128, "cols": 64},
                "noise": [{"kind": "weight_read_noise", "sigma": 0.02}],
            },
            id="fixed-dac-no-adc",
        ),
        pytest.param(
            {
                "dac": {"bits": None},
                "adc": {"bits": 10, "bound": 20.0},
                "noise": [{"kind": "output_noise", "sigma": 0.01, "relative_to": "out_bound"}],
            },
            id="output-noise-relative-to-bound",
        ),
    ],
)
def test_profiles_beyond_the_shipped_ones_round_trip(fields: dict[str, Any]) -> None:
    profile = _profile(**fields)
    assert_same(without_documented_losses(round_trip(profile)), without_documented_losses(profile))


@pytest.mark.parametrize(
    "fields,reason",
    [
        ({"noise_scale": 2.0}, "noise_scale 2"),
        ({"noise": [{"kind": "pcm_drift", "nu_mean": 0.05}]}, "only one of nu_mean/nu_std"),
        ({"noise": [{"kind": "pcm_read_1f", "q_exponent": 0.5}]}, "q_exponent other than 0.65"),
        (
            {"technology": "rram", "noise": [{"kind": "rram_relaxation"}], "t_inference_s": 3600},
            "1, 86400, 172800 s only",
        ),
        ({"noise": [{"kind": "pcm_programming"}, {"kind": "rram_cmo"}]}, "one device noise model"),
        ({"adc": {"bits": 8, "per_row": True}}, "adc.per_row"),
        ({"dac": None, "adc": {"bits": 8}}, "dac null"),
    ],
)
def test_to_aihwkit_refuses_what_aihwkit_cannot_express(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(BridgeError) as info:
        to_aihwkit(_profile(**fields))
    assert any(reason in r for r in info.value.reasons), info.value.reasons


# --------------------------------------------------------------------------- aihwkit -> profile


RASCH_2023 = {
    "type": "InferenceRPUConfig",
    "forward": {
        "is_perfect": False,
        "inp_res": 1 / 254,
        "inp_bound": 1.0,
        "out_res": 1 / 254,
        "out_bound": 10.0,
        "out_noise": 0.04,
        "w_noise": 0.0175,
        "w_noise_type": "WeightNoiseType.ADDITIVE_CONSTANT",
        "bound_management": "BoundManagementType.NONE",
        "noise_management": "NoiseManagementType.ABS_MAX",
        "ir_drop": 0.0,
        "inp_noise": 0.0,
        "ir_drop_g_ratio": 571428.57,
        "max_bm_factor": 1000,
    },
    "mapping": {
        "max_input_size": 512,
        "max_output_size": 512,
        "digital_bias": True,
        "weight_scaling_omega": 1.0,
        "weight_scaling_columnwise": True,
        "learn_out_scaling": True,
    },
    "noise_model": {
        "type": "PCMLikeNoiseModel",
        "g_max": 25.0,
        "prog_noise_scale": 1.5,
        "read_noise_scale": 0.5,
        "drift_scale": 1.0,
        "t_0": 20.0,
        "t_read": 250e-9,
    },
    "drift_compensation": {"type": "GlobalDriftCompensation"},
    "clip": {"type": "WeightClipType.FIXED_VALUE", "fixed_value": 1.0},
    "modifier": {"type": "WeightModifierType.ADD_NORMAL", "std_dev": 0.1},
    "t_inference": 3600,
}


def test_a_hardware_aware_training_preset_translates_field_by_field() -> None:
    t = from_aihwkit(RASCH_2023, name="rasch2023")
    p = t.profile
    assert (p.dac.bits, p.dac.bound, p.dac.bound_mode, p.dac.calibration_percentile) == (8, 1.0, "calibrated", 100.0)
    assert (p.adc.bits, p.adc.bound) == (8, 10.0)
    assert (p.tile.rows, p.tile.cols) == (512, 512)
    assert (p.mapping.scale, p.mapping.g_max_us, p.technology, p.t_inference_s) == ("per_channel", 25.0, "pcm", 3600)
    assert p.kinds() == ["pcm_programming", "pcm_drift", "pcm_read_1f", "weight_read_noise", "output_noise"]
    prog, drift, read, wrn, out = p.noise
    assert prog.coefficients_us == pytest.approx([1.5 * 0.26348, 1.5 * 1.9650, -1.5 * 1.1731])
    assert prog.g_max_ref_us == 25.0
    assert (drift.nu_mean, drift.nu_std, drift.t0_s, drift.compensation) == (None, None, 20.0, True)
    assert (read.q_coefficient, read.q_max, read.q_exponent) == pytest.approx((0.0044, 0.1, 0.65))
    assert wrn.sigma == 0.0175
    assert (out.sigma, out.relative_to) == (0.04, "absolute")
    assert not t.warnings
    notes = " ".join(t.notes)
    assert "ABS_MAX" in notes and "clip" in notes and "modifier" in notes and "learn_out_scaling" in notes
    assert "summed conductance" in notes  # the compensation's reference read differs from aihwkit's
    without = from_aihwkit({**RASCH_2023, "drift_compensation": None}, name="rasch2023")
    assert not any("summed conductance" in n for n in without.notes)
    assert "aihwkit" in p.description and p.references[0].doi == "10.1063/5.0168089"


@pytest.mark.parametrize(
    "inp_res,bits,rounded",
    [
        (1 / 126, 7, False),
        (126, 7, False),
        (1 / 254, 8, False),
        (0.01, 7, True),
        (2, 2, False),
        (0, None, False),
        (-1, None, False),
    ],
)
def test_resolution_becomes_bits(inp_res: float, bits: int | None, rounded: bool) -> None:
    t = from_aihwkit({"forward": {"inp_res": inp_res, "bound_management": "NONE"}, "noise_model": None}, name="x")
    assert t.profile.dac.bits == bits
    assert any("rounded to" in n for n in t.notes) == rounded


def test_absent_fields_take_aihwkit_defaults() -> None:
    t = from_aihwkit({}, name="defaults")
    p = t.profile
    assert (p.dac.bits, p.adc.bits, p.adc.bound) == (7, 9, 12.0)
    assert p.kinds() == ["pcm_programming", "pcm_drift", "pcm_read_1f", "output_noise"]
    assert p.noise[-1].sigma == 0.06
    assert p.mapping.g_max_us == 25.0 and p.mapping.scale == "per_tensor"
    assert any("bound_management is absent" in n for n in t.notes)
    assert any("PCMLikeNoiseModel() is taken" in n for n in t.notes)


def test_is_perfect_turns_off_the_periphery() -> None:
    p = from_aihwkit(
        {
            "forward": {"is_perfect": True, "out_noise": 0.1},
            "noise_model": None,
            "mapping": {"max_input_size": 0, "max_output_size": 0},
        },
        name="perfect",
    ).profile
    assert (p.dac, p.adc, p.tile, p.noise, p.technology) == (None, None, None, [], "generic")


def test_everything_that_cannot_be_translated_is_refused_at_once_each_with_a_reason() -> None:
    config = {
        "forward": {
            "w_noise": 0.02,
            "w_noise_type": "PCM_READ",
            "ir_drop": 1.0,
            "bound_management": "ITERATIVE",
            "colour": "blue",
        },
        "mapping": {"digital_bias": False, "weight_scaling_omega": 0.6},
        "noise_model": {
            "type": "PCMLikeNoiseModel",
            "drift_scale": 0.5,
            "g_converter": {"type": "DualPairConductanceConverter"},
        },
        "drift_compensation": {"type": "PerColumnDriftCompensation"},
        "tile_size": 3,
    }
    with pytest.raises(BridgeError) as info:
        from_aihwkit(config, name="x", source="lab.json")
    reasons = info.value.reasons
    expected = [
        ("forward.w_noise_type", "PCM_READ's std grows with sqrt(|w|)"),
        ("forward.ir_drop", "IR drop is not modelled"),
        ("forward.bound_management", "re-running a product with smaller inputs"),
        ("forward.colour", "not a field of forward"),
        ("mapping.digital_bias", "profiles add it digitally"),
        ("mapping.weight_scaling_omega", "another omega rescales"),
        ("noise_model.drift_scale", "only 0 (no drift) and 1 translate"),
        ("noise_model.g_converter.type", "differential pair"),
        ("drift_compensation", "only GlobalDriftCompensation"),
        ("tile_size", "not a field of InferenceRPUConfig"),
    ]
    for path, why in expected:
        assert any(r.startswith(f"{path}: ") and why in r for r in reasons), (path, reasons)
    assert len(reasons) == len(expected)
    assert str(info.value).startswith("lab.json: 10 field(s) cannot be translated into a profile (pass --lenient")

    lenient = from_aihwkit(config, name="x", lenient=True)
    assert len(lenient.warnings) == len(expected)
    assert all(w.endswith("(dropped)") for w in lenient.warnings)
    assert lenient.profile.kinds() == ["pcm_programming", "pcm_read_1f", "output_noise"]
    assert "Dropped (not expressible)" in lenient.profile.description


def test_wan2022_takes_its_time_from_t_inference() -> None:
    published = {
        "1": [0.348, 16.030, -43.853, 45.393, -16.815],
        "86400.0": [0.701, 22.086, -50.773, 47.095, -16.458],
        "172800": [0.782, 20.274, -43.507, 37.062, -11.934],
    }  # JSON keys are strings
    config = {
        "noise_model": {
            "type": "ReRamWan2022NoiseModel",
            "g_max": 40.0,
            "coeff_dic": published,
            "coeff_g_max_reference": 40.0,
        },
        "drift_compensation": None,
        "forward": {"w_noise": 0.01, "w_noise_type": "ADDITIVE_CONSTANT", "bound_management": "NONE"},
        "t_inference": 86400,
    }
    p = from_aihwkit(config, name="neurram").profile
    assert p.technology == "rram" and p.t_inference_s == 86400 and p.mapping.g_max_us == 40.0
    assert p.kinds() == ["rram_relaxation", "weight_read_noise", "output_noise"]
    assert p.noise[0].g_max_ref_us == 40.0
    with pytest.raises(
        BridgeError, match="t_inference: 3600 s: ReRamWan2022NoiseModel is defined at 1, 86400 and 172800 s only"
    ):
        from_aihwkit({**config, "t_inference": 3600}, name="neurram")
    changed = {**published, "1": [0.3, 16.0, -43.0, 45.0, -16.0]}
    with pytest.raises(BridgeError, match="only the published polynomials"):
        from_aihwkit({**config, "noise_model": {**config["noise_model"], "coeff_dic": changed}}, name="neurram")


def test_cmo_needs_its_decay_and_read_noise_off_and_keeps_the_programming_noise_in_us() -> None:
    model = {"type": "ReRamCMONoiseModel", "g_max": 90.0, "g_min": 9.0}
    with pytest.raises(BridgeError) as info:
        from_aihwkit({"noise_model": model, "drift_compensation": None}, name="cmo")
    assert [r.split(":")[0] for r in info.value.reasons] == ["noise_model.drift_scale", "noise_model.read_noise_scale"]
    t = from_aihwkit(
        {
            "noise_model": {**model, "drift_scale": 0, "read_noise_scale": 0},
            "drift_compensation": None,
            "forward": {"bound_management": "NONE"},
        },
        name="cmo",
    )
    entry = t.profile.noise[0]
    # aihwkit's default acceptance_range 0.02 is not a key of {0.2, 2}: it takes 0.2 (percent).
    assert entry.kind == "rram_cmo"
    assert entry.a * 90.0 == pytest.approx(0.00081107) and entry.b == pytest.approx(0.00106879)
    assert any("takes the smallest, 0.2" in n for n in t.notes)
    assert any("g_min = 9" in n for n in t.notes)


def test_custom_drift_with_constant_nu_folds_the_drift_scale() -> None:
    model = {
        "type": "CustomDriftPCMLikeNoiseModel",
        "prog_noise_scale": 0,
        "read_noise_scale": 0,
        "drift_scale": 2.0,
        "custom_drift_model": {"g_lst": [0, 25], "nu_mean_lst": [0.03, 0.03], "nu_std_lst": [0.01, 0.01]},
    }
    drift = from_aihwkit({"noise_model": model, "forward": {"bound_management": "NONE"}}, name="c").profile.noise[0]
    assert (drift.nu_mean, drift.nu_std, drift.compensation) == (0.06, 0.02, True)
    varying = {
        **model,
        "custom_drift_model": {"g_lst": [0, 25], "nu_mean_lst": [0.03, 0.05], "nu_std_lst": [0.01, 0.01]},
    }
    with pytest.raises(BridgeError, match="nu varies with conductance"):
        from_aihwkit({"noise_model": varying}, name="c")


def test_the_bridge_reads_dicts_only(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, hwprofiles.aihwkit_bridge as b, hwprofiles;"
            "b.from_aihwkit(b.to_aihwkit(hwprofiles.load_profile('pcm-joshi2020')), name='x');"
            "print('aihwkit' in sys.modules, 'torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------- command line


def test_cli_imports_an_aihwkit_file_with_notes(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user"
    monkeypatch.setenv("HWPROFILES_USER_DIR", str(user))
    src = tmp_path / "Rasch 2023.yaml"
    src.write_text(yaml.safe_dump(RASCH_2023))
    result = cli("profiles", "import", "--from", "aihwkit", src)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"imported: rasch-2023 -> {user / 'rasch-2023.yaml'}\n"
    assert "note: forward.noise_management ABS_MAX" in result.stderr
    assert hwprofiles.load_profile("rasch-2023").noise[2].q_max == pytest.approx(0.1)
    named = cli("profiles", "import", "--from", "aihwkit", src, "--name", "hwa-preset", "--to", tmp_path / "elsewhere")
    assert named.exit_code == 0, named.output
    assert (tmp_path / "elsewhere" / "hwa-preset.yaml").is_file()


def test_cli_refusal_is_one_error_block_and_lenient_imports(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HWPROFILES_USER_DIR", str(tmp_path / "user"))
    src = tmp_path / "cfg.json"
    src.write_text(json.dumps({"forward": {"ir_drop": 1.0, "bound_management": "NONE"}, "noise_model": None}))
    refused = cli("profiles", "import", "--from", "aihwkit", src)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {src}: 1 field(s) cannot be translated into a profile (pass --lenient to drop them):\n"
        "  forward.ir_drop: 1.0 is not supported (IR drop is not modelled by any built-in kind); only 0.0 is\n"
    )
    assert not (tmp_path / "user").exists()
    lenient = cli("profiles", "import", "--from", "aihwkit", src, "--lenient")
    assert lenient.exit_code == 0, lenient.output
    assert "warning: forward.ir_drop: 1.0 is not supported" in lenient.stderr


def test_cli_aihwkit_options_need_from_aihwkit(cli, tmp_path: Path) -> None:
    result = cli("profiles", "import", tmp_path, "--name", "x")
    assert result.exit_code == 2
    assert "--name and --lenient apply to --from aihwkit only" in " ".join(result.output.replace("│", " ").split())


def test_cli_exports_aihwkit_dicts_that_import_back(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("profiles", "export", "all", "--to", out, "--format", "aihwkit")
    assert result.exit_code == 0, result.output
    assert (out / "pcm-joshi2020.aihwkit.json").is_file() and not (out / "rram-hfox.aihwkit.json").exists()
    assert "warning: skipped rram-hfox: noise kind stuck_at" in result.stderr
    back = read_aihwkit_file(out / "rram-neurram.aihwkit.json").profile
    assert back.name == "rram-neurram.aihwkit"  # the file's stem, lower-cased
    assert back.kinds() == hwprofiles.load_profile("rram-neurram").kinds()
    refused = cli("profiles", "export", "rram-hfox", "--to", out, "--format", "aihwkit")
    assert refused.exit_code == 2 and "noise kind stuck_at" in refused.stderr
