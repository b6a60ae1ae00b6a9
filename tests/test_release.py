"""The release files agree with the package: the changelog's newest release is the version
hwprofiles reports, and the citation file names the licence pyproject declares."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import hwprofiles

ROOT = Path(__file__).resolve().parents[1]


def test_the_newest_release_in_the_changelog_is_the_package_version():
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert releases and releases[0] == hwprofiles.__version__
    assert releases == sorted(releases, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


def test_the_citation_file_and_the_licence_agree_with_pyproject():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    declared = re.search(r'^license = "(\w+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert declared and citation["license"] == declared[1] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert citation["references"][0]["title"] == "On Hardening DNNs against Noisy Computations"
