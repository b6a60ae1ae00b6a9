"""Property-based tests: whatever a file or a command line holds, a clean answer.

Generated profiles (valid and mutated), YAML documents (random structure, deep
nesting, anchors and aliases, tags, raw bytes), archives and arguments of the
``profiles`` commands must end in success or one readable error: never a
traceback, never an exception other than :class:`~hwprofiles.errors.HwProfilesError`,
never raw control characters on the terminal, and never a hang (each example has a
deadline). Examples are derandomized, so a run is repeatable.
"""

from __future__ import annotations

import io
import string
import tarfile
import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import hwprofiles
from hwprofiles.builtin import PROFILES_DIR
from hwprofiles.errors import ProfileError, YamlError
from hwprofiles.untrusted import load_yaml

pytestmark = [
    pytest.mark.usefixtures("clean_hwprofiles"),
    pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning"),  # generated zips may repeat a member
]

SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=10),  # a hang fails the example; the work itself takes milliseconds
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SHIPPED = {p.stem: yaml.safe_load(p.read_text()) for p in sorted(PROFILES_DIR.glob("*.yaml"))}

# --------------------------------------------------------------------------- strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)

noise_entry = st.fixed_dictionaries(
    {"kind": st.sampled_from(["gaussian_additive", "output_noise", "pcm_drift", "stuck_at", "pcm_programing", ""])},
    optional={"sigma": st.floats(-1, 2), "p_sa0": st.floats(-0.5, 1.5), "nu_mean": json_scalars},
)

profile_data = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True) | st.text(max_size=12),
        "technology": st.sampled_from(["pcm", "rram", "photonic", "sram", "generic", "PCM", ""]),
        "description": st.text(max_size=40),
    },
    optional={
        "dac": st.fixed_dictionaries({}, optional={"bits": st.integers(-2, 30) | st.none(), "bound": st.floats()}),
        "adc": st.fixed_dictionaries({}, optional={"bits": st.integers(-2, 30), "per_row": st.booleans()}),
        "tile": st.fixed_dictionaries({}, optional={"rows": st.integers(-1, 2_000_000), "cols": json_scalars}),
        "noise": st.lists(noise_entry, max_size=4),
        "noise_scale": st.floats(-1, 10),
        "references": st.lists(st.text(max_size=30) | json_values, max_size=3),
        "t_inference_s": json_scalars,
    },
)


@st.composite
def mutated_shipped(draw: st.DrawFn) -> Any:
    """A shipped profile with a few fields deleted, replaced or added."""
    data = dict(draw(st.sampled_from(sorted(SHIPPED.items())))[1])
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["delete", "replace", "add", "replace_nested"]))
        keys = sorted(data)
        if action == "delete" and keys:
            del data[draw(st.sampled_from(keys))]
        elif action == "replace" and keys:
            data[draw(st.sampled_from(keys))] = draw(json_values)
        elif action == "add":
            data[draw(st.text(max_size=10))] = draw(json_values)
        elif action == "replace_nested" and data.get("noise"):
            entries = [dict(e) for e in data["noise"]]
            entry = entries[draw(st.integers(0, len(entries) - 1))]
            entry[draw(st.sampled_from(sorted(entry)))] = draw(json_values)
            data["noise"] = entries
    return data


yaml_atoms = st.sampled_from(
    [
        "a",
        "1",
        "-1.5e3",
        ".nan",
        ".inf",
        "~",
        "null",
        "true",
        "'q'",
        '"\\e[2J"',
        "2024-13-01",
        "0x1F",
        "9" * 5000,
        "!!python/name:os.system",
        "!!binary aGk=",
        "*x",
        "&x b",
        "&x [1, 2]",
        "*undefined",
        "<<: *x",
        "|-\n  t",
    ]
)


@st.composite
def yaml_documents(draw: st.DrawFn) -> str:
    """YAML text: random flow structure with anchors and aliases, optionally nested deep."""
    tree = draw(
        st.recursive(
            yaml_atoms,
            lambda kids: (
                st.lists(kids, max_size=5).map(lambda xs: "[" + ", ".join(xs) + "]")
                | st.lists(st.tuples(st.sampled_from(["k", "name", "x", "<<", "? a"]), kids), max_size=4).map(
                    lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"
                )
                | kids.map(lambda x: f"&x {x}")
            ),
            max_leaves=20,
        )
    )
    depth = draw(st.sampled_from([0, 0, 10, 63, 64, 65, 500, 3000]))
    prefix = draw(
        st.sampled_from(["", "name: p\ntechnology: pcm\ndescription: d\nnoise: ", "---\n", "%YAML 1.1\n---\n"])
    )
    return prefix + "[" * depth + tree + "]" * depth


def laughs(levels: int, fan: int) -> str:
    lines = ["a0: &a0 [lol]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _no_control_characters(text: str) -> None:
    bad = {c for c in text if not (c.isprintable() or c in "\n")}
    assert not bad, f"raw control characters reached the terminal: {sorted(map(repr, bad))}"


def _clean(result: Any, codes: tuple[int, ...] = (0, 1, 2)) -> None:
    assert result.exit_code in codes, result.output
    assert "Traceback" not in result.output
    _no_control_characters(result.output)
    if result.exit_code:
        assert "error" in result.stderr.lower(), "a failure says why"


# --------------------------------------------------------------------------- profiles


@settings(max_examples=60, **SETTINGS)
@given(data=profile_data | mutated_shipped())
def test_profile_data_is_a_profile_or_one_profile_error(data: Any) -> None:
    try:
        profile = hwprofiles.parse_profile(data, source="gen.yaml")
    except ProfileError as exc:
        assert all(line.startswith("gen.yaml: ") for line in str(exc).splitlines()), str(exc)
        return
    again = hwprofiles.parse_profile(load_yaml(hwprofiles.dump_profile(profile)), source="again.yaml")
    assert again == profile, "a valid profile survives dump and load"


# --------------------------------------------------------------------------- YAML


@settings(max_examples=150, **SETTINGS)
@given(text=yaml_documents() | st.text(max_size=200) | st.builds(laughs, st.integers(1, 12), st.integers(1, 12)))
def test_yaml_text_is_data_or_one_yaml_error(text: str) -> None:
    try:
        load_yaml(text, "gen.yaml")
    except YamlError as exc:
        assert str(exc).startswith("gen.yaml: ")


@settings(max_examples=60, **SETTINGS)
@given(data=st.binary(max_size=300))
def test_yaml_bytes_are_data_or_one_yaml_error(data: bytes) -> None:
    try:
        load_yaml(data, "gen.yaml")
    except YamlError as exc:
        assert str(exc).startswith("gen.yaml: ")


# --------------------------------------------------------------------------- the profile commands

member_names = st.text(alphabet=string.printable + "\x1b\x07\x00é\u202e", min_size=1, max_size=30) | st.sampled_from(
    ["lib/ok.yaml", "../up.yaml", "/abs.yaml", "C:/x.yaml", "lib/.hidden.yaml", "__MACOSX/._a.yaml", "dir/"]
)
member_contents = (
    yaml_documents()
    | profile_data.map(lambda d: yaml.safe_dump(d, allow_unicode=True))
    | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
)


@st.composite
def archives(draw: st.DrawFn) -> tuple[str, bytes]:
    """(suffix, bytes) of a zip or tar with generated members, or of garbage, maybe cut short."""
    kind = draw(st.sampled_from([".zip", ".tar", ".tar.gz", ".tgz", ".tar.xz"]))
    members = draw(st.lists(st.tuples(member_names, member_contents), max_size=4))
    buf = io.BytesIO()
    if kind == ".zip":
        with zipfile.ZipFile(buf, "w") as archive:
            for name, text in members:
                archive.writestr(name.replace("\x00", "_"), text.encode("utf-8", "surrogatepass"))
    else:
        mode = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.xz": "w:xz"}[kind]
        with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as archive:
            for name, text in members:
                data = text.encode("utf-8", "surrogatepass")
                info = tarfile.TarInfo(name.replace("\x00", "_"))
                info.size = len(data)
                info.type = draw(
                    st.sampled_from([tarfile.REGTYPE] * 4 + [tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE])
                )
                archive.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    raw = buf.getvalue()
    damage = draw(st.sampled_from(["none", "none", "cut", "garbage", "flip"]))
    if damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "garbage":
        raw = draw(st.binary(max_size=400))
    elif damage == "flip" and raw:
        at = draw(st.integers(0, len(raw) - 1))
        raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    return kind, raw


@settings(max_examples=60, **SETTINGS)
@given(archive=archives(), skip_invalid=st.booleans(), force=st.booleans())
def test_profiles_import_of_any_archive_answers_cleanly(
    cli, archive: tuple[str, bytes], skip_invalid: bool, force: bool
) -> None:
    suffix, raw = archive
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"gen{suffix}"
        src.write_bytes(raw)
        args = ["profiles", "import", src, "--to", Path(tmp) / "to"]
        args += ["--skip-invalid"] * skip_invalid + ["--force"] * force
        result = cli(*args)
        _clean(result)
        if result.exit_code:
            assert not (Path(tmp) / "to").exists() or not any((Path(tmp) / "to").iterdir()), "all or nothing"


@settings(max_examples=40, **SETTINGS)
@given(
    text=member_contents | st.builds(laughs, st.integers(5, 12), st.integers(5, 12)),
    suffix=st.sampled_from([".yaml", ".yml", ".json"]),
)
def test_profiles_validate_show_and_list_of_any_file_answer_cleanly(cli, text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"gen{suffix}"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        validated = cli("profiles", "validate", path)
        _clean(validated, (0, 1))
        shown = cli("profiles", "show", path)
        _clean(shown, (0, 2))
        assert (validated.exit_code == 0) == (shown.exit_code == 0)
        _clean(cli("--profiles-dir", tmp, "profiles", "list"))


@settings(max_examples=80, **SETTINGS)
@example(command="show", argument="a/\x00.yaml", extra=[])  # a NUL reaches the file system only through the API
@given(
    command=st.sampled_from(["show", "validate", "import", "list"]),
    argument=st.text(max_size=40)
    | st.sampled_from(["ideal", ".", "/dev/null", "/dev/zero", "pcm_joshi2020", "x.yaml", "-", "a/\x00.yaml"]),
    extra=st.lists(
        st.sampled_from(["--to", "--force", "--skip-invalid", "--from", "aihwkit", "--name", "--lenient", "--help"]),
        max_size=3,
    ),
)
def test_any_arguments_to_the_profile_commands_answer_cleanly(
    cli, tmp_path_factory, monkeypatch, command: str, argument: str, extra: list[str]
) -> None:
    work = tmp_path_factory.mktemp("work")
    (work / "x.yaml").write_text("name: x\ntechnology: pcm\ndescription: d\n")
    monkeypatch.chdir(work)  # relative arguments ("", ".", "x.yaml") stay in here
    user = work / "user"
    result = cli("profiles", command, argument, *extra, env={"HWPROFILES_USER_DIR": str(user)})
    if result.exit_code == 2 and result.stderr.startswith("Usage:"):
        assert "Traceback" not in result.output  # a usage error echoes the user's own arguments
    else:
        _clean(result)
