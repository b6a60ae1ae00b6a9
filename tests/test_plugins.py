"""Plugins: a third-party device installed through a real entry point, and broken plugins.

The test device under ``plugin_fixture/`` is pip-installed into a directory of its
own and put on ``PYTHONPATH`` of the interpreters that use it, so the entry point
is found exactly as an installed plugin's would be, while the environment the
other tests run in keeps only the built-in plugin.

Broken plugins are written as real distributions too (a module and a
``.dist-info`` folder with ``entry_points.txt``) on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import hwprofiles
from hwprofiles.plugins import plugin_infos

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

FIXTURE = Path(__file__).parent / "plugin_fixture" / "hwprofiles-testdevice"


@pytest.fixture(scope="session")
def testdevice_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed ``hwprofiles-testdevice`` distribution."""
    work = tmp_path_factory.mktemp("testdevice")
    source = work / "source"
    # Build from a copy so the build leaves nothing in the repository.
    shutil.copytree(FIXTURE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = work / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"installing the test plugin failed:\n{proc.stdout}\n{proc.stderr}"
    assert (site / "hwprofiles_testdevice-0.1.0.dist-info" / "entry_points.txt").is_file()
    return site


@pytest.fixture
def with_testdevice(run_module, testdevice_site: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m hwprofiles ARGS...`` with the test device installed."""

    def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        path = os.pathsep.join(p for p in (str(testdevice_site), os.environ.get("PYTHONPATH", "")) if p)
        return run_module(*args, env={"PYTHONPATH": path, **(env or {})})

    return run


def _rows(table: str) -> dict[str, list[str]]:
    """A rich table's body rows, by first cell."""
    rows = {}
    for line in table.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│ ").split("│")]
            rows[cells[0]] = cells
    return rows


def test_installed_plugin_is_listed_with_its_hooks_and_kinds(with_testdevice) -> None:
    proc = with_testdevice("plugins")
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    names = list(rows)  # other installed plugins (e.g. hwprofiles-fefet) may be listed too
    assert names == ["builtin", *sorted(names[1:])] and "testdevice" in names, "built-in first, then by name"
    assert rows["testdevice"] == [
        "testdevice", "hwprofiles-testdevice", "0.1.0",
        "hwprofiles_profile_paths, hwprofiles_register_noise_models", "testdevice_noise",
    ]
    assert "testdevice_noise" not in rows["builtin"][4]


def test_installed_plugin_kind_is_in_the_schema(with_testdevice) -> None:
    proc = with_testdevice("profiles", "schema")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    mapping = schema["properties"]["noise"]["items"]["discriminator"]["mapping"]
    assert "testdevice_noise" in mapping
    assert "pcm_programming" in mapping


def test_installed_plugin_profile_is_listed_and_loads(with_testdevice) -> None:
    listed = with_testdevice("profiles", "list")
    assert listed.returncode == 0, listed.stderr
    assert _rows(listed.stdout)["testdevice-demo"] == [
        "testdevice-demo", "testdevice", "6", "7", "128", "testdevice_noise, output_noise", "testdevice",
    ]
    shown = with_testdevice("profiles", "show", "testdevice-demo")
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["noise"][0] == {"kind": "testdevice_noise", "note": None, "sigma": 0.03}


@pytest.mark.parametrize("blocked", ["testdevice", "hwprofiles-testdevice"])
def test_disable_env_blocks_a_plugin_by_name_or_distribution(with_testdevice, blocked: str) -> None:
    env = {"HWPROFILES_DISABLE_PLUGINS": f"someother, {blocked}"}
    proc = with_testdevice("plugins", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    assert "builtin" in rows and "testdevice" not in rows
    listed = with_testdevice("profiles", "list", env=env)
    assert "testdevice-demo" not in listed.stdout
    show = with_testdevice("profiles", "show", "testdevice-demo", env=env)
    assert show.returncode == 2
    assert "no profile named 'testdevice-demo'" in show.stderr


def test_without_its_plugin_a_profile_kind_is_unknown(with_testdevice, testdevice_site: Path) -> None:
    profile = next(testdevice_site.rglob("testdevice-demo.yaml"))
    ok = with_testdevice("profiles", "validate", profile)
    assert (ok.returncode, ok.stdout) == (0, f"ok: {profile}\n")
    blocked = with_testdevice("profiles", "validate", profile, env={"HWPROFILES_DISABLE_PLUGINS": "testdevice"})
    assert blocked.returncode == 1
    assert f"{profile}: noise.0: unknown noise kind 'testdevice_noise'" in blocked.stderr


# --- broken plugins, as real distributions on sys.path


@pytest.fixture
def fake_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Callable[..., None]:
    """``fake_plugin(distribution, entry_point, source)`` installs a one-module plugin."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def install(distribution: str, entry_point: str, source: str) -> None:
        module = f"{distribution.replace('-', '_')}_plugin"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[hwprofiles]\n{entry_point} = {module}\n")
        request.addfinalizer(lambda: sys.modules.pop(module, None))

    return install


def _one_error_block(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("error: ") == 1
    return result.stderr


def test_plugin_that_fails_to_import_is_named(cli, fake_plugin) -> None:
    fake_plugin("hwprofiles-vendorchip", "vendorchip", "import vendor_sdk_that_is_not_installed\n")
    message = _one_error_block(cli("plugins"))
    assert "plugin 'vendorchip' (distribution 'hwprofiles-vendorchip') failed to import" in message
    assert "ModuleNotFoundError: No module named 'vendor_sdk_that_is_not_installed'" in message
    assert "HWPROFILES_DISABLE_PLUGINS=vendorchip" in message
    with pytest.raises(hwprofiles.PluginError) as info:
        plugin_infos()
    assert info.value.plugin == "hwprofiles-vendorchip"


def test_plugin_whose_register_hook_raises_is_named(cli, fake_plugin) -> None:
    fake_plugin(
        "hwprofiles-flaky",
        "flaky",
        """
        import hwprofiles

        @hwprofiles.hookimpl
        def hwprofiles_register_noise_models(registry):
            raise RuntimeError("calibration table missing")
        """,
    )
    message = _one_error_block(cli("profiles", "list"))
    assert (
        "plugin 'flaky' (distribution 'hwprofiles-flaky') failed in hook hwprofiles_register_noise_models: "
        "RuntimeError: calibration table missing" in message
    )


def test_plugin_whose_profile_paths_hook_raises_is_named(cli, fake_plugin) -> None:
    fake_plugin(
        "hwprofiles-pathless",
        "pathless",
        """
        import hwprofiles

        @hwprofiles.hookimpl
        def hwprofiles_profile_paths():
            raise OSError("profile share not mounted")
        """,
    )
    assert cli("plugins").exit_code == 0, "the kinds load; only the profile library needs the hook"
    message = _one_error_block(cli("profiles", "list"))
    assert "plugin 'pathless' (distribution 'hwprofiles-pathless') failed in hook hwprofiles_profile_paths" in message
    assert "OSError: profile share not mounted" in message


def test_plugin_with_a_misspelled_hook_is_named(cli, fake_plugin) -> None:
    fake_plugin(
        "hwprofiles-typo",
        "typo",
        """
        import hwprofiles

        @hwprofiles.hookimpl
        def hwprofiles_register_noise_model(registry):
            pass
        """,
    )
    message = _one_error_block(cli("plugins"))
    assert "plugin 'typo' (distribution 'hwprofiles-typo') is not a valid hwprofiles plugin" in message
    assert "unknown hook 'hwprofiles_register_noise_model'" in message
    assert "hwprofiles_register_noise_models" in message.split("The hooks are:")[1]


def test_two_plugins_with_one_kind_name_both(cli, fake_plugin) -> None:
    source = """
        from typing import Literal
        import hwprofiles

        class SharedNoise(hwprofiles.NoiseEntry):
            kind: Literal["shared_noise"] = "shared_noise"

        @hwprofiles.hookimpl
        def hwprofiles_register_noise_models(registry):
            registry.add(SharedNoise, "somewhere:SharedNoiseKind")
        """
    fake_plugin("hwprofiles-alpha", "alpha", source)
    fake_plugin("hwprofiles-beta", "beta", source)
    message = _one_error_block(cli("plugins"))
    assert "noise kind 'shared_noise' is registered twice: by plugin 'alpha' and by plugin 'beta'" in message
    assert "distribution 'hwprofiles-beta'" in message


def test_a_plugin_cannot_take_a_builtin_kind(cli, fake_plugin) -> None:
    fake_plugin(
        "hwprofiles-copycat",
        "aaa_copycat",  # sorts before "builtin": the built-in must still register first
        """
        from typing import Literal
        import hwprofiles

        class MyOutputNoise(hwprofiles.NoiseEntry):
            kind: Literal["output_noise"] = "output_noise"

        @hwprofiles.hookimpl
        def hwprofiles_register_noise_models(registry):
            registry.add(MyOutputNoise, "somewhere:MyOutputNoiseKind")
        """,
    )
    message = _one_error_block(cli("plugins"))
    assert message.startswith("error: plugin 'aaa_copycat' (distribution 'hwprofiles-copycat')")
    assert "registered twice: by plugin 'builtin' and by plugin 'aaa_copycat'" in message


def test_disable_env_skips_a_broken_plugin(cli, fake_plugin) -> None:
    fake_plugin("hwprofiles-vendorchip", "vendorchip", "import vendor_sdk_that_is_not_installed\n")
    result = cli("plugins", env={"HWPROFILES_DISABLE_PLUGINS": "vendorchip"})
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert "builtin" in rows and "vendorchip" not in rows


def test_builtin_comes_through_its_entry_point() -> None:
    (builtin,) = [info for info in plugin_infos() if info.name == "builtin"]
    assert (builtin.distribution, builtin.module) == ("hwprofiles", "hwprofiles.builtin")
    assert builtin.hooks == [
        "hwprofiles_profile_paths", "hwprofiles_register_models", "hwprofiles_register_noise_models",
    ]


def test_trace_env_prints_hook_calls(cli) -> None:
    result = cli("plugins", env={"HWPROFILES_TRACE": "1"})
    assert result.exit_code == 0
    assert "calling hwprofiles_register_noise_models of plugin 'builtin'" in result.stderr


# --- profile directories from the environment


def test_hwprofiles_path_adds_profile_dirs(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = []
    for name in ("lab-one", "lab-two"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.yaml").write_text(f"name: {name}\ntechnology: generic\ndescription: A lab device.\n")
        dirs.append(str(folder))
    env = {"HWPROFILES_PATH": os.pathsep.join(dirs)}
    result = cli("profiles", "list", env=env)
    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    assert rows["lab-one"][-1] == rows["lab-two"][-1] == "HWPROFILES_PATH"

    monkeypatch.setenv("HWPROFILES_PATH", dirs[0])
    hwprofiles.plugins.reset_plugin_manager()
    assert hwprofiles.load_profile("lab-one").description == "A lab device."
    assert "lab-two" not in hwprofiles.list_profiles()
