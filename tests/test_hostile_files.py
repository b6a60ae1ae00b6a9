"""Hostile or odd files from others: bounded YAML, bounded archives, escaped names.

Each hostile input is built here, small on disk. A command that would run without
end is run in a fresh interpreter under a ``timeout`` so a regression fails instead
of hanging the suite; the limits themselves are counted, never timed.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import clean_env

import hwprofiles
from hwprofiles import untrusted
from hwprofiles.builtin import PROFILES_DIR
from hwprofiles.errors import ProfileError, YamlError
from hwprofiles.profiles import archives
from hwprofiles.profiles.archives import ArchiveLimits, read_candidates
from hwprofiles.profiles.install import import_profiles
from hwprofiles.untrusted import YamlLimits, load_yaml, printable

pytestmark = pytest.mark.usefixtures("clean_hwprofiles")

HEAD = "name: hostile\ntechnology: pcm\ndescription: A file from someone else.\n"


def laughs(levels: int = 9, fan: int = 9) -> str:
    """A "billion laughs" profile: each level names the previous one ``fan`` times."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    return HEAD + "references:\n" + "".join(f"  - {line.split(': ', 1)[1]}\n" for line in lines)


def deep(levels: int = 5000) -> str:
    return HEAD + "noise: " + "[" * levels + "]" * levels + "\n"


def run_cli(*args: str | Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m hwprofiles ARGS`` in a fresh interpreter; a hang past ``timeout`` fails the test."""
    proc = subprocess.run(
        [sys.executable, "-m", "hwprofiles", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(**env),
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


# --------------------------------------------------------------------------- YAML


def test_every_yaml_reader_refuses_a_billion_laughs(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(laughs())
    limit = "refusing this file: more than 100000 values once its aliases are expanded"
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "laughs.yaml").write_text(laughs())
    archive = tmp_path / "laughs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("lib/laughs.yaml", laughs())
    env = {"HWPROFILES_USER_DIR": str(tmp_path / "user")}
    for args, code in [
        (("profiles", "validate", path), 1),
        (("profiles", "show", path), 2),
        (("--profiles-dir", folder, "profiles", "list"), 1),
        (("profiles", "import", path), 1),
        (("profiles", "import", archive), 1),
        (("profiles", "import", "--from", "aihwkit", path), 2),
    ]:
        proc = run_cli(*args, **env)
        assert proc.returncode == code, (args, proc.stderr)
        assert limit in proc.stderr, (args, proc.stderr)
    assert not (tmp_path / "user").exists()


def test_load_yaml_counts_aliases_as_expanded_before_anything_walks_them() -> None:
    with pytest.raises(YamlError, match=r"^x.yaml: line \d+, column \d+: refusing this file: more than 100000 values"):
        load_yaml(laughs(), "x.yaml")
    # The same shape, small enough, loads: aliases themselves are allowed.
    data = load_yaml(laughs(levels=2, fan=3), "x.yaml")
    assert len(data["references"][2]) == 3 and data["references"][2][0] == data["references"][1]


@pytest.mark.parametrize(
    "text,message",
    [
        (deep(), "nesting deeper than 64 levels"),
        (HEAD + "references: &r [a, *r]\n", "the alias *r refers to a node that contains it"),
        (HEAD + "x: &a 1\ny: [" + ", ".join(["*a"] * 1001) + "]\n", "more than 1000 alias references"),
        (HEAD + "x: " + "a" * 70_000 + "\n", "a value of 70000 characters, more than 65536"),
        (HEAD + "x: " + "9" * 5000 + "\n", "cannot read this value: Exceeds the limit (4300 digits)"),
        (HEAD + "x: 2024-13-01\n", "cannot read this value: month must be in 1..12"),
        (HEAD + "? [a, b]\n: c\n", "found unhashable key"),
        (HEAD + "x: !!python/object/apply:os.system [echo hi]\n", "could not determine a constructor"),
        (HEAD + "x: \x1b[2J\n", "line 4, column 4: not valid YAML: the character #x001b is not allowed in YAML"),
        (HEAD + "x: a\x1eb\n", "the character #x001e is not allowed"),
    ],
    ids=[
        "deep",
        "recursive alias",
        "many aliases",
        "long scalar",
        "long int",
        "bad date",
        "unhashable key",
        "python tag",
        "escape",
        "record separator",
    ],
)
def test_validate_refuses_odd_yaml_with_file_and_reason(cli, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    result = cli("profiles", "validate", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: line ")
    assert message in result.stderr
    assert result.stderr.count("error:") == 1 and result.stderr.count("\n") == 1


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + "# " + "x" * untrusted.MAX_YAML_BYTES + "\n")
    with pytest.raises(
        ProfileError, match=rf"^{path}: refusing this file: \d+ bytes, more than {untrusted.MAX_YAML_BYTES}"
    ):
        hwprofiles.load_profile(path)
    monkeypatch.setattr(yaml.SafeLoader, "__init__", lambda *a: pytest.fail("the file was parsed"))
    with pytest.raises(YamlError, match="more than 1048576"):
        untrusted.read_yaml_file(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_or_device_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "profile.yaml"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        proc = run_cli("profiles", "validate", target, timeout=30)
        assert proc.returncode == 1
        assert proc.stderr == f"error: {target}: not a regular file\n"


def test_the_yaml_limits_leave_room_for_real_profiles() -> None:
    limits = YamlLimits()
    for path in sorted(PROFILES_DIR.glob("*.yaml")):
        text = path.read_text()
        assert len(text.encode()) * 20 < limits.max_bytes, path.name
        # Tighter limits, a tenth (or less) of the defaults, still read every shipped profile.
        tight = YamlLimits(
            max_bytes=limits.max_bytes // 10,
            max_depth=8,
            max_aliases=0,
            max_nodes=limits.max_nodes // 100,
            max_scalar_chars=limits.max_scalar_chars // 10,
        )
        assert load_yaml(text, path.name, tight) == yaml.safe_load(text)
    # ... and the defaults are bounds a machine survives, well under the interpreter's stack.
    assert limits.max_depth * 3 < sys.getrecursionlimit() // 2
    assert limits.max_bytes <= 16 * 1024 * 1024 and limits.max_nodes <= 1_000_000


def test_json_is_read_by_the_same_loader(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        '{"name": "as-json", "technology": "pcm", "description": "d", "noise": ' + "[" * 100 + "]" * 100 + "}"
    )
    with pytest.raises(ProfileError, match="nesting deeper than 64 levels"):
        hwprofiles.load_profile(path)


# --------------------------------------------------------------------------- archives


def lying_zip(path: Path, real: int, declared: int = 1000) -> Path:
    """A zip whose one member says it holds ``declared`` bytes but inflates to ``real``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("lib/p.yaml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(real >> 20):
                member.write(chunk)
    data = bytearray(buf.getvalue())
    data[22:26] = declared.to_bytes(4, "little")  # local header: uncompressed size
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = declared.to_bytes(4, "little")
    path.write_bytes(data)
    return path


def test_a_zip_whose_headers_lie_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = lying_zip(tmp_path / "lying.zip", real=64 << 20)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    try:
        (candidate,) = read_candidates(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert candidate.profile is None and "cannot be read from the archive" in (candidate.error or "")
    assert peak < 8 << 20, f"{peak} bytes held while reading a 64 MB member"


def test_a_member_declared_larger_than_the_cap_is_refused_unread(tmp_path: Path) -> None:
    path = lying_zip(tmp_path / "lying.zip", real=8 << 20, declared=900_000)
    with pytest.raises(
        ProfileError,
        match=r"refusing this archive: member 'lib/p.yaml' holds 900000 bytes, more than "
        r"a profile file may \(1000\)",
    ):
        read_candidates(path, limits=ArchiveLimits(member_bytes=1000))


def many_members_tar(path: Path, count: int, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        info = tarfile.TarInfo("m")
        for i in range(count):
            info.name = f"lib/{i}.txt"
            archive.addfile(info)
    return path


def test_a_tar_with_too_many_members_is_refused_while_streaming(tmp_path: Path, monkeypatch) -> None:
    path = many_members_tar(tmp_path / "many.tar.gz", 2000)
    headers = 0
    real_next = tarfile.TarFile.next

    def counting_next(self):
        nonlocal headers
        headers += 1
        return real_next(self)

    monkeypatch.setattr(tarfile.TarFile, "next", counting_next)
    with pytest.raises(ProfileError, match=rf"^{path}: refusing this archive: more than 20 members"):
        read_candidates(path, limits=ArchiveLimits(members=20))
    assert headers <= 22, f"{headers} member headers read to refuse past 20"


def test_a_zip_with_too_many_members_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(50):
            archive.writestr(f"lib/{i}.txt", "")
    with pytest.raises(ProfileError, match="refusing this archive: more than 20 members"):
        read_candidates(path, limits=ArchiveLimits(members=20))
    with pytest.raises(ProfileError, match="refusing this archive: its table of contents is over 1000 bytes"):
        read_candidates(path, limits=ArchiveLimits(zip_directory_bytes=1000, member_bytes=100))


def test_a_tar_that_unpacks_to_too_much_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    zeros = io.BytesIO(b"\0" * (4 << 20))
    path = tmp_path / "zeros.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("lib/data.bin")  # not a profile: skipped, but still unpacked
        info.size = len(zeros.getvalue())
        archive.addfile(info, zeros)
        archive.addfile(tarfile.TarInfo("lib/after.yaml"), io.BytesIO(b""))
    with pytest.raises(ProfileError, match="refusing this archive: it unpacks to more than 1000000 bytes"):
        read_candidates(path, limits=ArchiveLimits(unpacked_bytes=1_000_000))


@pytest.mark.parametrize("header", ["pax", "gnu long name"])
def test_a_tar_header_claiming_gigabytes_is_refused_unread(tmp_path: Path, header: str) -> None:
    # A pax header (or GNU long name) whose size field says 4 GB: tarfile would read it
    # whole into memory; the unpacked-bytes budget refuses the read before it happens.
    fmt, kind = (
        (tarfile.PAX_FORMAT, tarfile.XHDTYPE) if header == "pax" else (tarfile.GNU_FORMAT, tarfile.GNUTYPE_LONGNAME)
    )
    block = tarfile.TarInfo("././@LongLink")
    block.type, block.size = kind, 4 << 30
    raw = block.tobuf(format=fmt) if header == "pax" else block.tobuf(format=fmt)
    path = tmp_path / "liar.tar"
    path.write_bytes(raw + b"\0" * 4096)
    with pytest.raises(ProfileError, match=rf"^{path}: refusing this archive: it unpacks to more than"):
        read_candidates(path)


def test_the_archive_caps_are_sane() -> None:
    largest = max(p.stat().st_size for p in PROFILES_DIR.glob("*.yaml"))
    caps = ArchiveLimits()
    assert caps == archives.DEFAULT_ARCHIVE_LIMITS
    assert caps.member_bytes == untrusted.MAX_YAML_BYTES, "a member the YAML reader would refuse is not unpacked"
    assert caps.member_bytes > 100 * largest
    assert 1_000 <= caps.members <= 100_000, "a library of thousands of profiles fits; millions do not"
    assert 10 * caps.member_bytes <= caps.unpacked_bytes <= 256 << 20
    assert caps.zip_directory_bytes >= caps.members * 300, "10,000 members with long names fit"


def test_normal_archives_still_import(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HWPROFILES_USER_DIR", str(tmp_path / "user"))
    text = (PROFILES_DIR / "ideal.yaml").read_text().replace("name: ideal", "name: lab-ideal")
    for mode, suffix in [("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz"), ("w", ".tar")]:
        path = tmp_path / f"lib{suffix}"
        with tarfile.open(path, mode) as archive:
            info = tarfile.TarInfo("lib/lab.yaml")
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
            archive.addfile(tarfile.TarInfo("lib/empty.txt"), io.BytesIO(b""))
        (candidate,) = read_candidates(path)
        assert candidate.profile is not None and candidate.profile.name == "lab-ideal", candidate.error
    assert [p.name for p in import_profiles(path).written] == ["lab-ideal.yaml"]


# --------------------------------------------------------------------------- escaped names

ESC = "\x1b]0;pwned\x07\x1b[2J"


def test_printable_escapes_control_characters_only() -> None:
    assert printable("lib/ok-é.yaml") == "lib/ok-é.yaml"
    assert printable("a\\b") == "a\\b"
    assert printable(ESC) == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert printable("x\u202ey\n\udcff") == "x\\u202ey\\x0a\\udcff"
    assert printable(printable(ESC)) == printable(ESC)


def test_archive_member_names_reach_the_terminal_escaped(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HWPROFILES_USER_DIR", str(tmp_path / "user"))
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as archive:
        data = b"name: [unclosed\n"
        info = tarfile.TarInfo(f"lib/{ESC}.yaml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    unsafe = tmp_path / "unsafe.zip"
    with zipfile.ZipFile(unsafe, "w") as archive:
        archive.writestr(f"../{ESC}.yaml", "x")
    for path, code in [(bad, 1), (unsafe, 2)]:
        result = cli("profiles", "import", path)
        assert result.exit_code == code
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "\\x1b]0;pwned\\x07\\x1b[2J.yaml" in result.stderr


def test_file_names_and_profile_names_reach_the_terminal_escaped(cli, tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / f"{ESC}.yaml").write_text(
        f'name: "{ESC}"\ntechnology: pcm\ndescription: d\n'.replace("\x1b", "\\e").replace("\x07", "\\a")
    )
    listed = cli("--profiles-dir", folder, "profiles", "list")
    validated = cli("profiles", "validate", folder)
    for result in (listed, validated):
        assert result.exit_code == 1
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "\\x1b]0;pwned" in result.output


# --------------------------------------------------------------------------- checkpoints


class _RunsCode:
    """Unpickling this calls a function: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("loader", ["load_checkpoint", "load_state_dict_file"])
def test_a_checkpoint_carrying_code_is_refused_without_running_it(tmp_path: Path, loader: str) -> None:
    torch = pytest.importorskip("torch")
    from hwprofiles.errors import CheckpointError
    from hwprofiles.train import checkpoint

    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.pt"
    torch.save(
        {"format": "hwprofiles-checkpoint", "state_dict": {"w": torch.zeros(1)}, "payload": _RunsCode(marker)}, path
    )
    with pytest.raises(CheckpointError, match=r"hostile.pt: holds code or Python objects \(\w+\)") as info:
        getattr(checkpoint, loader)(path)
    assert not marker.exists(), "loading ran code from the file"
    assert "weights_only" not in str(info.value)  # never a hint to load it unsafely


def test_every_test_docs_security_cites_exists() -> None:
    import re

    doc = (Path(__file__).parents[1] / "docs" / "security.md").read_text()
    cited = re.findall(r"`tests/(\w+\.py)::(\w+)", doc)
    assert len(cited) >= 30
    for module, name in cited:
        assert f"def {name}(" in (Path(__file__).parent / module).read_text(), f"{module}::{name}"
