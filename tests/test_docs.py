"""docs/writing-a-plugin.md works: following only the guide gives a working plugin.

The guide's code blocks are run as a reader would: every block whose first line is
``# file: PATH`` is written under an empty folder; every ``bash`` block is run line
by line there (``cd``, ``pip install``, ``hwprofiles ...``, ``python -m pytest``),
with the package pip-installed into a folder of its own that is put on
``PYTHONPATH`` (as tests/test_plugins.py installs its fixture), so the entry point
is found exactly as an installed plugin's would be. A block may be skipped only
when the comment line before it says why (``<!-- not run: ... -->``).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-a-plugin.md"
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$", re.S | re.M)
FILE_MARK = re.compile(r"^# file: (?P<path>\S+)\n")
NOT_RUN = re.compile(r"<!-- not run: (?P<why>[^>]+) -->\s*$")
LAYOUT = "<!-- layout -->"


@dataclass
class Block:
    lang: str
    body: str
    before: str  # the last non-empty line before the fence

    @property
    def file(self) -> str | None:
        match = FILE_MARK.match(self.body)
        return match["path"] if match else None


def guide_blocks() -> list[Block]:
    text = GUIDE.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        before = [line for line in text[: match.start()].splitlines() if line.strip()]
        blocks.append(Block(match["lang"], match["body"], before[-1] if before else ""))
    return blocks


@dataclass
class Reader:
    """Follows the guide in ``root``: writes its files, runs its commands."""

    root: Path
    site: Path
    cwd: Path = field(init=False)
    outputs: dict[str, str] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cwd = self.root

    def env(self) -> dict[str, str]:
        path = os.pathsep.join(p for p in (str(self.site), os.environ.get("PYTHONPATH", "")) if p)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HWPROFILES_")}
        return {**env, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}

    def write(self, block: Block) -> Path:
        path = self.root / block.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(FILE_MARK.sub("", block.body, count=1), encoding="utf-8")
        self.written.append(path)
        return path

    def run_line(self, line: str) -> None:
        argv = shlex.split(line, comments=True)
        if not argv:
            return
        if argv[0] == "cd":
            self.cwd = (self.cwd / argv[1]).resolve()
            assert self.cwd.is_dir(), f"the guide changes into {argv[1]}, which it never created"
            return
        if argv[:3] == ["python", "-m", "pip"] or argv[0] == "pip":
            pip_args = argv[3:] if argv[0] == "python" else argv[1:]
            assert pip_args[:1] == ["install"] and pip_args[-1] == ".", f"unexpected pip command: {line}"
            # An editable install cannot go into a --target folder; a plain one from the same
            # source finds the same entry point.
            command = [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--disable-pip-version-check",
                "-q",
                "--upgrade",
                "--target",
                str(self.site),
                ".",
            ]
        elif argv[0] == "hwprofiles":
            command = [sys.executable, "-m", "hwprofiles", *argv[1:]]
        elif argv[:3] == ["python", "-m", "pytest"]:
            command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *argv[3:]]
        else:
            raise AssertionError(f"the guide runs a command this test does not know how to follow: {line}")
        proc = subprocess.run(command, cwd=self.cwd, env=self.env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"`{line}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        self.outputs[" ".join(argv)] = proc.stdout


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Reader:
    """An empty folder after following the whole guide."""
    work = tmp_path_factory.mktemp("guide")
    reader = Reader(root=work / "reader", site=work / "site")
    reader.root.mkdir()
    for block in guide_blocks():
        if NOT_RUN.search(block.before) or block.before.strip() == LAYOUT:
            continue
        if block.file:
            reader.write(block)
        elif block.lang == "bash":
            for line in block.body.splitlines():
                reader.run_line(line)
        else:
            raise AssertionError(
                f"a ```{block.lang} block is neither a file, nor commands, nor marked "
                f"<!-- not run: why -->:\n{block.body[:200]}"
            )
    return reader


def test_every_block_is_run_or_says_why_not() -> None:
    blocks = guide_blocks()
    skipped = [NOT_RUN.search(b.before)["why"] for b in blocks if NOT_RUN.search(b.before)]
    assert skipped == ["building in an isolated environment and uploading need the network"]
    assert sum(1 for b in blocks if b.file) >= 7 and sum(1 for b in blocks if b.lang == "bash") >= 3


def test_the_layout_lists_exactly_the_files_the_guide_writes(reader: Reader) -> None:
    (layout,) = [b for b in guide_blocks() if b.before.strip() == LAYOUT]
    listed = set(re.findall(r"[\w.-]+\.(?:toml|py|yaml)\b", layout.body))
    assert listed == {p.name for p in reader.written}


def test_the_plugin_is_listed_with_its_hooks_and_kind(reader: Reader) -> None:
    row = next(line for line in reader.outputs["hwprofiles plugins"].splitlines() if line.startswith("│ acme "))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == [
        "acme",
        "hwprofiles-acme",
        "0.1.0",
        "hwprofiles_profile_paths, hwprofiles_register_models, hwprofiles_register_noise_models, hwprofiles_swap_layer",
        "acme_telegraph",
    ]


def test_its_profile_is_listed_shown_and_its_kind_is_in_the_schema(reader: Reader) -> None:
    assert re.search(
        r"│ acme-demo +│ acme +│ 8 +│ 8 +│ 256 +│ acme_telegraph, output_noise +│ acme +│",
        reader.outputs["hwprofiles profiles list"],
    )
    shown = yaml.safe_load(reader.outputs["hwprofiles profiles show acme-demo"])
    assert shown["noise"][0] == {"kind": "acme_telegraph", "note": None, "probability": 0.1, "amplitude": 0.02}
    schema = json.loads(reader.outputs["hwprofiles profiles schema"])
    assert "acme_telegraph" in schema["properties"]["noise"]["items"]["discriminator"]["mapping"]


def test_training_and_evaluation_use_the_plugins_model_and_profile(reader: Reader) -> None:
    (train,) = [out for cmd, out in reader.outputs.items() if cmd.startswith("hwprofiles train")]
    assert "test accuracy" in train and (reader.cwd / "nit.pt").is_file()
    (evaluation,) = [out for cmd, out in reader.outputs.items() if cmd.startswith("hwprofiles eval")]
    assert "acme-demo" in evaluation and "ideal" in evaluation


def test_the_plugins_own_tests_pass_with_the_conformance_kit(reader: Reader) -> None:
    summary = reader.outputs["python -m pytest -q"].strip().splitlines()[-1]
    assert re.match(r"^3 passed\b", summary), summary
