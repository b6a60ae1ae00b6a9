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
from hwprofiles.builtin import PROFILES_DIR
from hwprofiles.plugins import broken_plugins, plugin_infos, reset_plugin_manager

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

FIXTURE = Path(__file__).parent / "plugin_fixture" / "hwprofiles-testdevice"


def _pip_install(fixture: Path, work: Path) -> Path:
    """Install the distribution at ``fixture`` into a folder of its own; return the folder."""
    source = work / "source"
    # Build from a copy so the build leaves nothing in the repository.
    shutil.copytree(fixture, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = work / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"installing {fixture.name} failed:\n{proc.stdout}\n{proc.stderr}"
    return site


@pytest.fixture(scope="session")
def testdevice_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed ``hwprofiles-testdevice`` distribution."""
    site = _pip_install(FIXTURE, tmp_path_factory.mktemp("testdevice"))
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
        "testdevice",
        "hwprofiles-testdevice",
        "0.1.0",
        "hwprofiles_profile_paths, hwprofiles_register_noise_models",
        "testdevice_noise",
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
        "testdevice-demo",
        "testdevice",
        "6",
        "7",
        "128",
        "testdevice_noise, output_noise",
        "testdevice",
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
#
# A broken plugin is left out: the others load, `hwprofiles plugins` shows it with the
# reason (exit 1), other commands print one `warning:` and work. With
# HWPROFILES_STRICT_PLUGINS=1 every one of them makes startup fail with one error block.


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


STRICT = {"HWPROFILES_STRICT_PLUGINS": "1"}


def _one_error_block(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("error: ") == 1
    return result.stderr


def _one_warning(result) -> str:
    """The command worked, and said once on stderr which plugin was left out."""
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, result.stderr
    assert "error:" not in result.stderr
    return warnings[0]


def _left_out(cli, name: str, distribution: str) -> str:
    """`hwprofiles plugins` lists the built-in, and ``name`` as not loaded; returns why."""
    result = cli("plugins")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    rows = _rows(result.stdout)
    assert rows["builtin"][:2] == ["builtin", "hwprofiles"]
    assert "output_noise" in rows["builtin"][4], "the built-in kinds are all there"
    assert rows[name][:3] == [name, distribution, "1.0"]
    assert result.stderr.startswith("error: 1 plugin could not be loaded")
    return rows[name][3]


VENDORCHIP = "import vendor_sdk_that_is_not_installed\n"


def test_plugin_that_fails_to_import_is_left_out(cli, fake_plugin) -> None:
    fake_plugin("hwprofiles-vendorchip", "vendorchip", VENDORCHIP)
    why = _left_out(cli, "vendorchip", "hwprofiles-vendorchip")
    assert why == "failed to import: ModuleNotFoundError: No module named 'vendor_sdk_that_is_not_installed'"
    warning = _one_warning(cli("profiles", "show", "ideal"))
    assert warning.startswith(
        "warning: plugin 'vendorchip' (distribution 'hwprofiles-vendorchip') failed to import: "
        "ModuleNotFoundError: No module named 'vendor_sdk_that_is_not_installed'"
    )
    assert "HWPROFILES_DISABLE_PLUGINS=vendorchip" in warning
    reset_plugin_manager()
    with pytest.warns(hwprofiles.PluginWarning, match="vendorchip"):
        infos = plugin_infos()
    assert "vendorchip" not in {info.name for info in infos}
    assert [(b.name, b.distribution) for b in broken_plugins()] == [("vendorchip", "hwprofiles-vendorchip")]


def test_strict_env_makes_a_plugin_that_fails_to_import_fail_startup(cli, fake_plugin, monkeypatch) -> None:
    fake_plugin("hwprofiles-vendorchip", "vendorchip", VENDORCHIP)
    message = _one_error_block(cli("plugins", env=STRICT))
    assert "plugin 'vendorchip' (distribution 'hwprofiles-vendorchip') failed to import" in message
    assert "ModuleNotFoundError: No module named 'vendor_sdk_that_is_not_installed'" in message
    assert "HWPROFILES_DISABLE_PLUGINS=vendorchip" in message
    monkeypatch.setenv("HWPROFILES_STRICT_PLUGINS", "1")
    with pytest.raises(hwprofiles.PluginError) as info:
        plugin_infos()
    assert info.value.plugin == "hwprofiles-vendorchip"


FLAKY = """
    from typing import Literal
    import hwprofiles

    class FlakyNoise(hwprofiles.NoiseEntry):
        kind: Literal["flaky_noise"] = "flaky_noise"

    @hwprofiles.hookimpl
    def hwprofiles_register_noise_models(registry):
        registry.add(FlakyNoise, "somewhere:FlakyNoiseKind")
        raise RuntimeError("calibration table missing")
    """


def test_plugin_whose_register_hook_raises_is_left_out_with_its_kinds(cli, fake_plugin, tmp_path: Path) -> None:
    fake_plugin("hwprofiles-flaky", "flaky", FLAKY)
    assert _left_out(cli, "flaky", "hwprofiles-flaky") == (
        "failed in hook hwprofiles_register_noise_models: RuntimeError: calibration table missing"
    )
    assert "flaky_noise" not in hwprofiles.list_noise_models(), "a half-registered plugin is taken out whole"
    _one_warning(cli("profiles", "list"))
    # A profile that needs the plugin is refused, naming it; the others are not.
    needs = tmp_path / "needs-flaky.yaml"
    needs.write_text("name: needs-flaky\ntechnology: pcm\ndescription: d\nnoise:\n  - kind: flaky_noise\n")
    result = cli("profiles", "validate", needs, PROFILES_DIR / "ideal.yaml")
    assert result.exit_code == 1
    assert f"ok: {PROFILES_DIR / 'ideal.yaml'}" in result.stdout
    assert (
        f"error: {needs}: noise.0: noise kind 'flaky_noise' comes from plugin 'flaky' (distribution "
        "'hwprofiles-flaky'), which is not loaded: failed in hook hwprofiles_register_noise_models: "
        "RuntimeError: calibration table missing" in result.stderr
    )
    message = _one_error_block(cli("profiles", "list", env=STRICT))
    assert (
        "plugin 'flaky' (distribution 'hwprofiles-flaky') failed in hook hwprofiles_register_noise_models: "
        "RuntimeError: calibration table missing" in message
    )


def test_plugin_registering_a_non_class_is_left_out(cli, fake_plugin) -> None:
    fake_plugin(
        "hwprofiles-sloppy",
        "sloppy",
        """
        import hwprofiles

        @hwprofiles.hookimpl
        def hwprofiles_register_noise_models(registry):
            registry.add("sloppy_noise", "somewhere:SloppyKind")
        """,
    )
    why = _left_out(cli, "sloppy", "hwprofiles-sloppy")
    assert (
        why
        == "failed in hook hwprofiles_register_noise_models: TypeError: 'sloppy_noise' is not a hwprofiles.NoiseEntry subclass"
    )
    _one_warning(cli("profiles", "show", "ideal"))


def test_an_unknown_kind_mentions_plugins_that_failed_to_load(cli, fake_plugin, tmp_path: Path) -> None:
    fake_plugin("hwprofiles-vendorchip", "vendorchip", VENDORCHIP)
    path = tmp_path / "vendor.yaml"
    path.write_text("name: vendor\ntechnology: pcm\ndescription: d\nnoise:\n  - kind: vendorchip_noise\n")
    result = cli("profiles", "validate", path)
    assert result.exit_code == 1
    assert "unknown noise kind 'vendorchip_noise'" in result.stderr
    assert "Plugins that failed to load, which may bring it: 'vendorchip'" in result.stderr


def test_plugin_whose_profile_paths_hook_raises_is_warned_about(cli, fake_plugin) -> None:
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
    result = cli("profiles", "list")
    warning = _one_warning(result)
    assert warning.startswith(
        "warning: plugin 'pathless' (distribution 'hwprofiles-pathless'): failed in hook "
        "hwprofiles_profile_paths: OSError: profile share not mounted"
    )
    assert "ideal" in _rows(result.stdout), "the other profiles are listed"
    message = _one_error_block(cli("profiles", "list", env=STRICT))
    assert "plugin 'pathless' (distribution 'hwprofiles-pathless')" in message
    assert "OSError: profile share not mounted" in message


@pytest.mark.parametrize(
    "returned,problem",
    [
        ('"profiles"', "returned 'profiles', not a list of paths"),
        ("42", "returned int 42, not a list of paths"),
        ("[HERE, 42]", "returned int 42 in its list, not a path"),
        ('[HERE, HERE / "gone"]', "gave '{here}/gone', which does not exist"),
    ],
    ids=["a string", "an int", "a list holding an int", "a missing path"],
)
def test_plugin_giving_bad_profile_paths_is_warned_about(
    cli, fake_plugin, tmp_path: Path, returned: str, problem: str
) -> None:
    here = tmp_path / "shipped"
    here.mkdir()
    (here / "shipped-one.yaml").write_text("name: shipped-one\ntechnology: pcm\ndescription: d\n")
    fake_plugin(
        "hwprofiles-odd",
        "odd",
        f"""
        from pathlib import Path
        import hwprofiles

        HERE = Path({str(here)!r})

        @hwprofiles.hookimpl
        def hwprofiles_profile_paths():
            return {returned}
        """,
    )
    result = cli("profiles", "list")
    warning = _one_warning(result)
    assert warning.startswith("warning: plugin 'odd' (distribution 'hwprofiles-odd'): hook hwprofiles_profile_paths ")
    assert problem.format(here=here) in warning
    rows = _rows(result.stdout)
    assert "ideal" in rows, "the built-in profiles are still listed"
    if returned.startswith("[HERE"):
        assert rows["shipped-one"][-1] == "odd", "the plugin's good paths are still used"
    assert _one_error_block(cli("profiles", "list", env=STRICT)).startswith("error: plugin 'odd'")


def test_plugin_with_a_misspelled_hook_is_left_out(cli, fake_plugin) -> None:
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
    why = _left_out(cli, "typo", "hwprofiles-typo")
    assert (
        why.startswith("is not a valid hwprofiles plugin") and "unknown hook 'hwprofiles_register_noise_model'" in why
    )
    message = _one_error_block(cli("plugins", env=STRICT))
    assert "plugin 'typo' (distribution 'hwprofiles-typo') is not a valid hwprofiles plugin" in message
    assert "unknown hook 'hwprofiles_register_noise_model'" in message
    assert "hwprofiles_register_noise_models" in message.split("The hooks are:")[1]


SHARED = """
    from typing import Literal
    import hwprofiles

    class SharedNoise(hwprofiles.NoiseEntry):
        kind: Literal["shared_noise"] = "shared_noise"

    @hwprofiles.hookimpl
    def hwprofiles_register_noise_models(registry):
        registry.add(SharedNoise, "somewhere:SharedNoiseKind")
    """


def test_two_plugins_with_one_kind_name_both(cli, fake_plugin) -> None:
    fake_plugin("hwprofiles-alpha", "alpha", SHARED)
    fake_plugin("hwprofiles-beta", "beta", SHARED)
    why = _left_out(cli, "beta", "hwprofiles-beta")
    assert "noise kind 'shared_noise' is registered twice: by plugin 'alpha' and by plugin 'beta'" in why
    assert hwprofiles.get_noise_model("shared_noise").owner == "alpha", "the first keeps its kind"
    message = _one_error_block(cli("plugins", env=STRICT))
    assert "noise kind 'shared_noise' is registered twice: by plugin 'alpha' and by plugin 'beta'" in message
    assert "distribution 'hwprofiles-beta'" in message


def test_a_plugin_cannot_take_a_builtin_kind(cli, fake_plugin, tmp_path: Path) -> None:
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
    why = _left_out(cli, "aaa_copycat", "hwprofiles-copycat")
    assert "registered twice: by plugin 'builtin' and by plugin 'aaa_copycat'" in why
    assert hwprofiles.get_noise_model("output_noise").owner == "builtin"
    path = tmp_path / "uses-output-noise.yaml"
    path.write_text("name: uses\ntechnology: pcm\ndescription: d\nnoise:\n  - kind: output_noise\n    sigma: 0.1\n")
    result = cli("profiles", "validate", path)
    assert (result.exit_code, result.stdout) == (0, f"ok: {path}\n"), "the built-in kind still works"
    message = _one_error_block(cli("plugins", env=STRICT))
    assert message.startswith("error: plugin 'aaa_copycat' (distribution 'hwprofiles-copycat')")
    assert "registered twice: by plugin 'builtin' and by plugin 'aaa_copycat'" in message


def test_disable_env_skips_a_broken_plugin(cli, fake_plugin) -> None:
    fake_plugin("hwprofiles-vendorchip", "vendorchip", VENDORCHIP)
    for env in ({"HWPROFILES_DISABLE_PLUGINS": "vendorchip"}, {"HWPROFILES_DISABLE_PLUGINS": "vendorchip", **STRICT}):
        result = cli("plugins", env=env)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
        rows = _rows(result.stdout)
        assert "builtin" in rows and "vendorchip" not in rows


# --- a broken distribution installed through real entry points, beside a working one

BROKEN_FIXTURE = Path(__file__).parent / "plugin_fixture" / "hwprofiles-brokendevice"


@pytest.fixture(scope="session")
def brokendevice_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed ``hwprofiles-brokendevice`` distribution (two broken plugins)."""
    site = _pip_install(BROKEN_FIXTURE, tmp_path_factory.mktemp("brokendevice"))
    assert (site / "hwprofiles_brokendevice-0.2.0.dist-info" / "entry_points.txt").is_file()
    return site


def test_installed_broken_plugins_leave_the_others_working(
    run_module, testdevice_site: Path, brokendevice_site: Path, tmp_path: Path
) -> None:
    path = os.pathsep.join(
        p for p in (str(brokendevice_site), str(testdevice_site), os.environ.get("PYTHONPATH", "")) if p
    )

    def run(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        proc = run_module(*args, env={"PYTHONPATH": path, **env})
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    plugins = run("plugins")
    assert plugins.returncode == 1, plugins.stderr
    rows = _rows(plugins.stdout)
    assert rows["testdevice"][4] == "testdevice_noise", "the working plugin is loaded"
    assert "output_noise" in rows["builtin"][4]
    assert rows["brokenimport"][:4] == [
        "brokenimport",
        "hwprofiles-brokendevice",
        "0.2.0",
        "failed to import: ModuleNotFoundError: No module named 'hwprofiles_vendor_sdk_not_installed'",
    ]
    assert rows["brokenclash"][3].startswith(
        "failed in hook hwprofiles_register_noise_models: noise kind "
        "'output_noise' is registered twice: by plugin 'builtin' and by plugin 'brokenclash'"
    )

    listed = run("profiles", "list")
    assert listed.returncode == 0, listed.stderr
    assert {"testdevice-demo", "ideal", "pcm-joshi2020"} <= set(_rows(listed.stdout))
    warnings = listed.stderr.splitlines()
    assert sorted(w.split(" (distribution")[0] for w in warnings) == [
        "warning: plugin 'brokenclash'",
        "warning: plugin 'brokenimport'",
    ], "one warning per broken plugin, once"

    demo = next(testdevice_site.rglob("testdevice-demo.yaml"))
    needs = tmp_path / "needs-broken.yaml"
    needs.write_text("name: needs-broken\ntechnology: pcm\ndescription: d\nnoise:\n  - kind: brokendevice_noise\n")
    validated = run("profiles", "validate", demo, needs)
    assert validated.returncode == 1
    assert validated.stdout == f"ok: {demo}\n"
    assert (
        f"error: {needs}: noise.0: noise kind 'brokendevice_noise' comes from plugin 'brokenclash' "
        "(distribution 'hwprofiles-brokendevice'), which is not loaded" in validated.stderr
    )

    strict = run("profiles", "list", HWPROFILES_STRICT_PLUGINS="1")
    assert strict.returncode == 2
    assert strict.stderr.startswith(
        "error: plugin 'brokenimport' (distribution 'hwprofiles-brokendevice') failed to import"
    )
    assert strict.stderr.count("error:") == 1


def test_builtin_comes_through_its_entry_point() -> None:
    (builtin,) = [info for info in plugin_infos() if info.name == "builtin"]
    assert (builtin.distribution, builtin.module) == ("hwprofiles", "hwprofiles.builtin")
    assert builtin.hooks == [
        "hwprofiles_profile_paths",
        "hwprofiles_register_models",
        "hwprofiles_register_noise_models",
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
