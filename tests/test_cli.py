"""The command line: what each command prints, its exit codes, and that it stays torch-free."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import hwprofiles
from hwprofiles.builtin import PROFILES_DIR
from hwprofiles.cli import error_block, main
from hwprofiles.registry import noise_models

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

GOOD = "name: lab-device\ntechnology: rram\ndescription: A device of our lab.\ndac: {bits: 5}\nadc: null\n"


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"hwprofiles {hwprofiles.__version__}\n"


def test_no_arguments_prints_help(cli) -> None:
    result = cli()
    assert "profiles" in result.output and "plugins" in result.output


def test_profiles_list_shows_every_profile_with_its_numbers(cli) -> None:
    result = cli("profiles", "list")
    assert result.exit_code == 0, result.output
    for name in hwprofiles.list_profiles():
        assert name in result.stdout
    row = next(line for line in result.stdout.splitlines() if " pcm-joshi2020 " in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == [
        "pcm-joshi2020",
        "pcm",
        "8",
        "8",
        "512",
        "pcm_programming, pcm_drift, pcm_read_1f, weight_read_noise, output_noise",
        "builtin",
    ]


def test_profiles_dir_adds_profiles_and_names_their_provider(cli, tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text(GOOD)
    result = cli("--profiles-dir", tmp_path, "profiles", "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if " lab-device " in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == [
        "lab-device",
        "rram",
        "5",
        "-",
        "-",
        "-",
        "--profiles-dir",
    ]


def test_profiles_dir_must_exist(cli, tmp_path: Path) -> None:
    result = cli("--profiles-dir", tmp_path / "nowhere", "profiles", "list")
    assert result.exit_code == 2
    assert "nowhere" in result.stderr


def test_list_marks_a_broken_library_file_and_prints_its_errors(cli, tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text(GOOD)
    (tmp_path / "broken.yaml").write_text(GOOD.replace("lab-device", "broken-device") + "dac: {bits: 0}\n")
    result = cli("--profiles-dir", tmp_path, "profiles", "list")
    assert result.exit_code == 1
    assert "lab-device" in result.stdout and "pcm-joshi2020" in result.stdout
    row = next(line for line in result.stdout.splitlines() if " broken-device " in line)
    assert "INVALID" in row
    assert result.stderr.startswith(f"error: {tmp_path / 'broken.yaml'}: ")


def test_list_as_json_gives_every_profile_its_numbers_and_marks_a_broken_one(cli, tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(GOOD.replace("lab-device", "broken-device") + "dac: {bits: 0}\n")
    result = cli("--profiles-dir", tmp_path, "profiles", "list", "--json")
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {tmp_path / 'broken.yaml'}: ")
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(hwprofiles.list_profiles()) | {"broken-device"}
    pcm = hwprofiles.load_profile("pcm-joshi2020")
    assert rows["pcm-joshi2020"] == {
        "name": "pcm-joshi2020",
        "provider": "builtin",
        "path": str(PROFILES_DIR / "pcm-joshi2020.yaml"),
        "valid": True,
        "technology": "pcm",
        "dac_bits": pcm.dac.bits,
        "adc_bits": pcm.adc.bits,
        "tile_rows": pcm.tile.rows,
        "noise_kinds": list(dict.fromkeys(pcm.kinds())),
    }
    assert rows["broken-device"]["valid"] is False and "bits" in rows["broken-device"]["error"]


def test_show_as_json_reads_back_as_the_same_profile(cli) -> None:
    result = cli("profiles", "show", "pcm-joshi2020", "--json")
    assert result.exit_code == 0, result.output
    assert hwprofiles.parse_profile(json.loads(result.stdout)) == hwprofiles.load_profile("pcm-joshi2020")


def test_show_prints_the_resolved_profile_as_yaml(cli, tmp_path: Path) -> None:
    result = cli("profiles", "show", "pcm-joshi2020")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert hwprofiles.parse_profile(data) == hwprofiles.load_profile("pcm-joshi2020")
    assert data["noise"][1]["t0_s"] == 20.0
    assert "nu_mean" in data["noise"][1], "defaults are filled in"

    path = tmp_path / "lab.yaml"
    path.write_text(GOOD)
    by_path = cli("profiles", "show", path)
    assert by_path.exit_code == 0
    assert yaml.safe_load(by_path.stdout)["name"] == "lab-device"


def test_show_of_an_unknown_name_suggests_a_close_one(cli) -> None:
    result = cli("profiles", "show", "pcm-joshi")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: no profile named 'pcm-joshi'. Did you mean 'pcm-joshi2020'")
    assert result.stderr.count("error:") == 1


def test_validate_walks_directories_and_reports_each_file(cli, tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "good.yml").write_text(GOOD)
    (tmp_path / "good.json").write_text(json.dumps(yaml.safe_load(GOOD.replace("lab-device", "json-device"))))
    (tmp_path / "bad.yaml").write_text(GOOD + "tile: {rows: 0}\n")
    (tmp_path / "notes.txt").write_text("not a profile")
    result = cli("profiles", "validate", tmp_path, PROFILES_DIR / "ideal.yaml")
    assert result.exit_code == 1
    assert sorted(result.stdout.splitlines()) == sorted(
        f"ok: {p}" for p in (nested / "good.yml", tmp_path / "good.json", PROFILES_DIR / "ideal.yaml")
    )
    assert result.stderr == f"error: {tmp_path / 'bad.yaml'}: tile.rows: Input should be greater than or equal to 1\n"


def test_validate_of_only_good_files_exits_0(cli) -> None:
    result = cli("profiles", "validate", PROFILES_DIR)
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == len(list(PROFILES_DIR.glob("*.yaml")))
    assert result.stderr == ""


@pytest.mark.parametrize("make", ["missing", "empty_dir"])
def test_validate_of_nothing_is_an_error(cli, tmp_path: Path, make: str) -> None:
    target = tmp_path / "nothing-here"
    if make == "empty_dir":
        target.mkdir()
    result = cli("profiles", "validate", target)
    assert result.exit_code == 1
    assert str(target) in result.stderr


def test_plugins_lists_the_builtin_plugin_and_its_kinds(cli) -> None:
    result = cli("plugins")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ builtin "))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:3] == ["builtin", "hwprofiles", hwprofiles.__version__]
    assert cells[3] == "hwprofiles_profile_paths, hwprofiles_register_models, hwprofiles_register_noise_models"
    builtin_kinds = sorted(k for k, m in noise_models().items() if m.owner == "builtin")
    assert cells[4].split(", ") == builtin_kinds
    assert {"gaussian_additive", "pcm_drift", "stuck_at"} <= set(builtin_kinds)


def test_plugins_as_json_name_each_plugin_its_hooks_and_kinds(cli) -> None:
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    listing = json.loads(result.stdout)
    builtin = next(p for p in listing["loaded"] if p["name"] == "builtin")
    assert builtin["distribution"] == "hwprofiles" and builtin["version"] == hwprofiles.__version__
    assert builtin["noise_kinds"] == sorted(k for k, m in noise_models().items() if m.owner == "builtin")
    assert "hwprofiles_register_noise_models" in builtin["hooks"] and listing["not_loaded"] == []


def test_error_block_indents_later_lines() -> None:
    assert error_block(ValueError("a.yaml: x: bad\na.yaml: y: worse")) == "error: a.yaml: x: bad\n  a.yaml: y: worse"


def test_main_returns_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["profiles", "show", "no-such-profile"]) == 2
    assert main(["profiles", "no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "error: no profile named 'no-such-profile'" in err


def test_commands_never_import_torch(tmp_path: Path, subprocess_env) -> None:
    (tmp_path / "lab.yaml").write_text(GOOD)
    script = (
        "import sys\n"
        "from hwprofiles.cli import main\n"
        f"for args in [['profiles', 'list'], ['profiles', 'list', '--json'], ['plugins', '--json'], ['plugins'], ['profiles', 'schema'], ['profiles', 'show', 'pcm-joshi2020'],"
        f" ['profiles', 'validate', {str(PROFILES_DIR)!r}, {str(tmp_path)!r}]]:\n"
        "    assert main(args) == 0, args\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "False"


def test_python_dash_m_runs_the_cli(run_module) -> None:
    proc = run_module("profiles", "show", "nope")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no profile named 'nope'")
    assert "Traceback" not in proc.stderr


def _commands(command, path=()):
    """Every leaf command under ``command``, with the words that reach it."""
    subcommands = getattr(command, "commands", {})
    if not subcommands:
        yield path, command
    for name, sub in subcommands.items():
        yield from _commands(sub, (*path, name))


def _help_rows(text: str) -> list[str]:
    """The lines of a help screen without the box drawing, whitespace collapsed."""
    return [" ".join(line.strip("│╭╮╰╯─ ").removeprefix("* ").split()) for line in text.splitlines()]


def test_every_help_screen_shows_its_defaults_and_flags_plainly(cli) -> None:
    import typer.main

    from hwprofiles.cli import app

    root = typer.main.get_command(app)
    commands = list(_commands(root))
    assert {"train", "eval", "study", "models"} <= {path[0] for path, _ in commands}
    for path, command in commands:
        result = cli(*path, "--help", env={"COLUMNS": "400"})  # one row per option
        assert result.exit_code == 0, result.output
        rows = _help_rows(result.stdout)
        assert not [row for row in rows if row.endswith(" .")], (path, rows)
        assert not [row for row in rows if "<bool>" in row], (path, rows)
        named = set(re.findall(r"\bhwprofiles ([a-z]+)\b", result.stdout))  # "listed by hwprofiles models"
        assert named <= set(root.commands), (path, named)
        for param in command.params:
            long_names = [o for o in param.opts if o.startswith("--")]
            if not long_names or param.hidden:
                continue
            row = next(r for r in rows if r.split(" ", 1)[0] == long_names[0])
            shows = isinstance(param.show_default, str) or (
                param.show_default is not False
                and not getattr(param, "is_flag", False)
                and param.default not in (None, [], ())
            )
            if shows:
                assert "[default: " in row, (path, row)


def test_help_stays_torch_free_and_names_config_and_completion(tmp_path: Path, subprocess_env) -> None:
    script = (
        "import sys\n"
        "from hwprofiles.cli import main\n"
        "for args in [['--help'], ['train', '--help'], ['eval', '--help'], ['study', '--help'], ['models']]:\n"
        "    assert main(args) == 0, args\n"
        "print('torch' in sys.modules, file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(COLUMNS="200"), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "False"
    assert "--install-completion" in proc.stdout and "--show-completion" in proc.stdout
    assert "--config" in proc.stdout and "--print-config" in proc.stdout


def test_shell_completion_completes_commands_and_options(cli) -> None:
    script = cli("--show-completion", "bash")
    assert script.exit_code == 0 and "_HWPROFILES_COMPLETE=complete_bash" in script.stdout
    env = {"_HWPROFILES_COMPLETE": "complete_bash", "COMP_WORDS": "hwprofiles tr", "COMP_CWORD": "1"}
    from typer.testing import CliRunner

    from hwprofiles.cli import app

    completed = CliRunner().invoke(app, [], env=env, prog_name="hwprofiles")
    assert completed.stdout.split() == ["train", "transfer"]
    env.update(COMP_WORDS="hwprofiles train --print-c", COMP_CWORD="2")
    assert CliRunner().invoke(app, [], env=env, prog_name="hwprofiles").stdout.split() == ["--print-config"]


def test_models_lists_the_registered_names_with_what_each_is(cli) -> None:
    from hwprofiles.models import list_models

    result = cli("models")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if " lenet5 " in line)
    assert [c.strip() for c in row.strip("│ ").split("│")] == [
        "lenet5",
        "LeNet-5 for 28x28 or 32x32 images.",
        "builtin",
    ]
    assert "torchvision:NAME" in result.stderr
    listed = json.loads(cli("models", "resnet*", "--json").stdout)
    assert [m["name"] for m in listed] == list_models("resnet*") and len(listed) >= 3
    assert all(m["description"].startswith("ResNet-") and m["owner"] == "builtin" for m in listed)
    assert json.loads(cli("models", "nothing*", "--json").stdout) == []


def test_a_model_registered_as_an_object_is_described_by_its_docstring(cli) -> None:
    from hwprofiles.cli.models import describe

    def tiny(**kwargs):
        """A tiny net.

        More words."""

    assert describe(tiny) == "A tiny net."
    assert describe("hwprofiles.models.vgg:vgg11") == "VGG-11 without batch normalisation."
    assert describe("no_such_module_here:f") == "" and describe("hwprofiles.models.vgg:nothing") == ""


def test_json_output_is_strict_json_even_for_a_failed_evaluation(capsys: pytest.CaptureFixture[str]) -> None:
    from hwprofiles.cli.output import print_json

    print_json({"mean": float("nan"), "cells": [1.5, float("inf"), {"ci": (float("-inf"), 0.25)}], "name": "a\x1b"})
    out = capsys.readouterr().out
    assert json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == {
        "mean": None,
        "cells": [1.5, None, {"ci": [None, 0.25]}],
        "name": "a\x1b",
    }
    assert "\x1b" not in out
