"""The profile library on disk: the user directory, import (files, directories, archives), export."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

import hwprofiles
from hwprofiles.builtin import PROFILES_DIR
from hwprofiles.errors import InvalidProfilesError, ProfileError
from hwprofiles.profiles import dump_profile, install, profile_library, user_profile_dir
from hwprofiles.profiles.install import export_profiles, import_profiles

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")


def profile_text(name: str, **extra: object) -> str:
    data = {"name": name, "technology": "rram", "description": f"The {name} device of our lab.", **extra}
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config" / "hwprofiles" / "profiles"
    monkeypatch.setenv("HWPROFILES_USER_DIR", str(path))
    return path


def files_in(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- the user directory


def test_user_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_profile_dir() == tmp_path / "home" / ".config" / "hwprofiles" / "profiles"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_profile_dir() == tmp_path / "xdg" / "hwprofiles" / "profiles"
    monkeypatch.setenv("HWPROFILES_USER_DIR", str(tmp_path / "mine"))
    assert user_profile_dir() == tmp_path / "mine"


def test_the_library_searches_the_user_dir_as_provider_user(cli, user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "lab.yaml").write_text(profile_text("lab-device"))
    assert profile_library()["lab-device"].provider == "user"
    result = cli("profiles", "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if " lab-device " in line)
    assert row.strip("│ ").split("│")[-1].strip() == "user"


# --------------------------------------------------------------------------- import


def test_list_profiles_filters_by_pattern_like_list_models(user_dir: Path) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "lab.yaml").write_text(profile_text("pcm-lab"))
    assert hwprofiles.list_profiles("pcm-*") == ["pcm-hermes", "pcm-joshi2020", "pcm-lab"]
    assert hwprofiles.list_profiles("*-[48]bit") == ["photonic-ptc-4bit", "sram-cim-8bit"]
    # fnmatch semantics as list_models: case-sensitive, and a pattern matches the whole name
    assert hwprofiles.list_profiles("PCM-*") == [] == hwprofiles.list_profiles("pcm")
    assert hwprofiles.list_profiles() == hwprofiles.list_profiles("*") == sorted(profile_library())


def test_import_a_file_writes_resolved_yaml_named_after_the_profile(cli, user_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "anything.yml"
    src.write_text(profile_text("lab-device", dac={"bits": 5}))
    result = cli("profiles", "import", src)
    assert result.exit_code == 0, result.output
    written = user_dir / "lab-device.yaml"
    assert result.stdout == f"imported: lab-device -> {written}\n"
    profile = hwprofiles.load_profile("lab-device")
    assert written.read_text() == dump_profile(profile)
    assert yaml.safe_load(written.read_text())["dac"]["bound"] == 1.0, "defaults are filled in"


def test_import_a_directory_recursively_json_included(cli, user_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "lab"
    (src / "a" / "b").mkdir(parents=True)
    (src / "one.yaml").write_text(profile_text("one"))
    (src / "a" / "b" / "two.json").write_text(json.dumps(yaml.safe_load(profile_text("two"))))
    (src / "README.md").write_text("not a profile")
    (src / ".hidden.yaml").write_text("not: [valid")  # editor files are not profiles
    result = cli("profiles", "import", src)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in user_dir.iterdir()) == ["one.yaml", "two.yaml"]


def test_invalid_files_are_all_reported_and_nothing_is_imported(cli, user_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "lab"
    src.mkdir()
    (src / "good.yaml").write_text(profile_text("good"))
    (src / "bad-tile.yaml").write_text(profile_text("bad-tile", tile={"rows": 0}))
    (src / "bad-kind.yaml").write_text(profile_text("bad-kind", noise=[{"kind": "pcm_drfit"}]))
    result = cli("profiles", "import", src)
    assert result.exit_code == 1
    assert not user_dir.exists(), "nothing is imported when a file is invalid"
    err = result.stderr
    assert f"error: {src / 'bad-tile.yaml'}: tile.rows: Input should be greater than or equal to 1" in err
    assert f"error: {src / 'bad-kind.yaml'}: noise.0: " in err and "pcm_drift" in err
    assert "nothing was imported: 2 of 3 files are not valid profiles" in err
    assert "Traceback" not in err

    skipping = cli("profiles", "import", src, "--skip-invalid")
    assert skipping.exit_code == 0, skipping.output
    assert [p.name for p in user_dir.iterdir()] == ["good.yaml"]
    assert skipping.stderr.count("warning: skipped an invalid file:") == 2


def test_an_existing_name_is_never_replaced_without_force(cli, user_dir: Path, tmp_path: Path) -> None:
    user_dir.mkdir(parents=True)
    old = user_dir / "old-file-name.yaml"
    old.write_text(profile_text("lab-device"))
    src = tmp_path / "new.yaml"
    src.write_text(profile_text("lab-device", dac={"bits": 6}))
    refused = cli("profiles", "import", src)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: nothing was imported:")
    assert "'lab-device' already exists in" in refused.stderr and "--force" in refused.stderr
    assert files_in(user_dir) == {"old-file-name.yaml": profile_text("lab-device").encode()}

    forced = cli("profiles", "import", src, "--force")
    assert forced.exit_code == 0, forced.output
    assert f"replaced: {old}" in forced.stdout
    assert sorted(files_in(user_dir)) == ["lab-device.yaml"], "the replaced profile's old file is gone"
    assert hwprofiles.load_profile("lab-device").dac.bits == 6


def test_a_library_name_needs_force_and_is_never_shadowed_in_a_searched_dir(
    cli, user_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "mine.yaml"
    src.write_text(profile_text("pcm-joshi2020"))
    refused = cli("profiles", "import", src)
    assert refused.exit_code == 2
    assert "'pcm-joshi2020' is already in the profile library" in refused.stderr
    assert "(from builtin)" in refused.stderr
    still = cli("profiles", "import", src, "--force")
    assert still.exit_code == 2
    assert "two profiles with one name would make the library unusable" in still.stderr
    assert not user_dir.exists()
    elsewhere = tmp_path / "elsewhere"
    ok = cli("profiles", "import", src, "--to", elsewhere, "--force")
    assert ok.exit_code == 0, ok.output
    assert (elsewhere / "pcm-joshi2020.yaml").is_file()


def test_two_files_with_one_name_are_refused(user_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "lab"
    src.mkdir()
    (src / "a.yaml").write_text(profile_text("twin"))
    (src / "b.yaml").write_text(profile_text("twin"))
    with pytest.raises(ProfileError, match="two profiles to import are named 'twin'"):
        import_profiles(src)
    assert not user_dir.exists()


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def _tar(path: Path, members: dict[str, str], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("suffix,mode", [(".zip", None), (".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_import_an_archive(cli, user_dir: Path, tmp_path: Path, suffix: str, mode: str | None) -> None:
    members = {
        "lib/one.yaml": profile_text("one"),
        "lib/sub/two.yml": profile_text("two"),
        "lib/notes.txt": "ignored",
        "__MACOSX/lib/._one.yaml": "\x00\x01 resource fork",
    }
    path = tmp_path / f"library{suffix}"
    _zip(path, members) if mode is None else _tar(path, members, mode)
    result = cli("profiles", "import", path)
    assert result.exit_code == 0, result.output
    assert sorted(files_in(user_dir)) == ["one.yaml", "two.yaml"]


def test_an_invalid_archive_member_is_named_by_archive_and_member(cli, user_dir: Path, tmp_path: Path) -> None:
    path = _zip(
        tmp_path / "lib.zip", {"ok.yaml": profile_text("ok"), "dir/bad.yaml": profile_text("bad", adc={"bits": 99})}
    )
    result = cli("profiles", "import", path)
    assert result.exit_code == 1
    assert f"error: {path}:dir/bad.yaml: adc.bits: Input should be less than or equal to 24" in result.stderr
    assert not user_dir.exists()


@pytest.mark.parametrize(
    "member,why",
    [("/etc/evil.yaml", "has an absolute path"), ("../evil.yaml", "climbs out"), ("lib/../../evil.yaml", "climbs out")],
)
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_unsafe_archives_are_refused_whole(
    cli, user_dir: Path, tmp_path: Path, member: str, why: str, kind: str
) -> None:
    members = {"lib/ok.yaml": profile_text("ok"), member: profile_text("evil")}
    path = tmp_path / "work" / f"bad.{kind}"
    path.parent.mkdir()
    _zip(path, members) if kind == "zip" else _tar(path, members)
    result = cli("profiles", "import", path, "--skip-invalid")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}: refusing this archive: member '{member}' {why}")
    assert not user_dir.exists()
    assert not (tmp_path / "evil.yaml").exists() and not (tmp_path / "work" / "evil.yaml").exists()


def test_archive_links_are_refused(user_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "links.tar"
    with tarfile.open(path, "w") as archive:
        link = tarfile.TarInfo("lib/passwd.yaml")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(ProfileError, match="member 'lib/passwd.yaml' is a link"):
        import_profiles(path)
    zpath = tmp_path / "links.zip"
    with zipfile.ZipFile(zpath, "w") as archive:
        info = zipfile.ZipInfo("lib/passwd.yaml")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ProfileError, match="is a symbolic link"):
        import_profiles(zpath)


@pytest.mark.parametrize(
    "src,message", [("nowhere.yaml", "no such file or directory"), ("notes.txt", "not a profile file")]
)
def test_unreadable_sources(cli, tmp_path: Path, src: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = cli("profiles", "import", tmp_path / src)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("error:") == 1


def test_a_failed_move_rolls_back_everything(user_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user_dir.mkdir(parents=True)
    (user_dir / "keep.yaml").write_text(profile_text("keep"))
    (user_dir / "b.yaml").write_text(profile_text("b"))
    before = files_in(user_dir)
    src = tmp_path / "lab"
    src.mkdir()
    for name in ("a", "b", "c"):
        (src / f"{name}.yaml").write_text(profile_text(name, dac={"bits": 4}))

    calls: list[tuple[Path, Path]] = []
    real_move = install._move

    def failing_move(a: Path, b: Path) -> None:
        calls.append((Path(a), Path(b)))
        if len(calls) == 3:  # set aside the old b, move in a, then fail on b
            raise OSError("disk full")
        real_move(a, b)

    monkeypatch.setattr(install, "_move", failing_move)
    with pytest.raises(OSError, match="disk full"):
        import_profiles(src, force=True)
    assert len(calls) == 3
    assert files_in(user_dir) == before, "the old b is back and a is gone"
    assert [p.name for p in user_dir.parent.iterdir()] == ["profiles"], "no staging directory is left behind"


# --------------------------------------------------------------------------- export


def test_export_names_and_all(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli("profiles", "export", "pcm-joshi2020", "ideal", "--to", out)
    assert result.exit_code == 0, result.output
    assert sorted(files_in(out)) == ["ideal.yaml", "pcm-joshi2020.yaml"]
    assert (out / "ideal.yaml").read_text() == dump_profile(hwprofiles.load_profile("ideal"))
    everything = cli("profiles", "export", "all", "--to", out)
    assert everything.exit_code == 0, everything.output
    assert sorted(files_in(out)) == sorted(f"{n}.yaml" for n in hwprofiles.list_profiles())


def test_export_never_replaces_other_content_without_force(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "ideal.yaml").write_text("mine\n")
    refused = cli("profiles", "export", "ideal", "pcm-hermes", "--to", out)
    assert refused.exit_code == 2
    assert f"{out / 'ideal.yaml'} exists with other content; pass --force" in refused.stderr
    assert files_in(out) == {"ideal.yaml": b"mine\n"}, "all or nothing"
    assert cli("profiles", "export", "ideal", "pcm-hermes", "--to", out, "--force").exit_code == 0
    assert (out / "ideal.yaml").read_text() == dump_profile(hwprofiles.load_profile("ideal"))


def test_export_of_an_unknown_name_writes_nothing(cli, tmp_path: Path) -> None:
    result = cli("profiles", "export", "ideal", "pcm-joshi", "--to", tmp_path / "out")
    assert result.exit_code == 2
    assert "no profile named 'pcm-joshi'" in result.stderr and "Did you mean 'pcm-joshi2020'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_shipped_library_round_trips_byte_stable(cli, user_dir: Path, tmp_path: Path) -> None:
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    assert cli("profiles", "export", "all", "--to", first).exit_code == 0
    # The names are all in the library already, so the copy outside it needs --force.
    imported = cli("profiles", "import", first, "--to", second, "--force")
    assert imported.exit_code == 0, imported.output
    again = cli("profiles", "export", *sorted(second.glob("*.yaml")), "--to", third)
    assert again.exit_code == 0, again.output
    assert files_in(first) == files_in(second) == files_in(third)
    assert len(files_in(first)) == len(hwprofiles.list_profiles())  # shipped and from installed plugins
    assert {p.name for p in PROFILES_DIR.glob("*.yaml")} <= set(files_in(first))
    assert not user_dir.exists()


# --------------------------------------------------------------------------- libraries from plugins


class _LabLibrary:
    """A plugin object that contributes a whole directory of profiles."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @hwprofiles.hookimpl
    def hwprofiles_profile_paths(self) -> list[Path]:
        return [self.directory]


def test_a_plugin_ships_a_library_through_hwprofiles_profile_paths(user_dir: Path, tmp_path: Path) -> None:
    from hwprofiles.plugins import reset_plugin_manager

    shipped = tmp_path / "lab_library"
    (shipped / "pcm").mkdir(parents=True)
    for name in ("lab-a", "lab-b"):
        (shipped / f"{name}.yaml").write_text(profile_text(name))
    (shipped / "pcm" / "lab-c.yml").write_text(profile_text("lab-c", technology="pcm"))

    reset_plugin_manager()
    hwprofiles.get_plugin_manager().register(_LabLibrary(shipped), name="lab-library")
    try:
        found = {n: s for n, s in profile_library().items() if n.startswith("lab-")}
        assert sorted(found) == ["lab-a", "lab-b", "lab-c"]
        assert {s.provider for s in found.values()} == {"lab-library"}
        assert hwprofiles.load_profile("lab-c").technology == "pcm"
        # The plugin's names are the library's: an import may not take one.
        src = tmp_path / "clash.yaml"
        src.write_text(profile_text("lab-b"))
        with pytest.raises(ProfileError, match=r"'lab-b' is already in the profile library: .* \(from lab-library\)"):
            import_profiles(src)
        written = export_profiles(["all"], tmp_path / "out")
        assert {"lab-a.yaml", "lab-b.yaml", "lab-c.yaml"} <= {p.name for p in written}
    finally:
        reset_plugin_manager()
    assert "lab-a" not in profile_library()


def test_import_result_lists_what_was_skipped(user_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "lab"
    src.mkdir()
    (src / "good.yaml").write_text(profile_text("good"))
    (src / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(InvalidProfilesError) as info:
        import_profiles(src)
    assert [c.source for c in info.value.failures] == [str(src / "bad.yaml")]
    result = import_profiles(src, skip_invalid=True)
    assert [p.name for p in result.written] == ["good.yaml"]
    assert "not valid YAML" in (result.skipped[0].error or "")
