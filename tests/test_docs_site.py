"""The documentation site: every public name is documented, and the site builds strictly.

The public API is what ``docs/gen/api_names.py`` lists (the ``__all__`` of the package
façade and of the public sub-packages, and every plugin hook); the site's API reference is
generated from the same list. ``mkdocs build --strict`` fails on a broken link, a missing
anchor or a docstring mkdocstrings cannot render; the build test also checks that the
generated pages (one per shipped profile, the command-line and API references) are there.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GEN = ROOT / "docs" / "gen"
sys.path.insert(0, str(GEN))
import api_names  # noqa: E402

sys.path.remove(str(GEN))


def own_docstring(obj: object) -> str:
    """The docstring ``obj`` itself has (a class's, not one inherited from its bases)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
    return (doc or "").strip()


def resolve(path: str) -> object:
    module, _, name = path.rpartition(".")
    while True:
        try:
            target: object = importlib.import_module(module)
            break
        except ModuleNotFoundError:  # a nested name: module.Class.method
            module, _, outer = module.rpartition(".")
            name = f"{outer}.{name}"
    for part in name.split("."):
        target = getattr(target, part)
    return target


def test_every_public_name_is_listed_once_where_it_is_defined() -> None:
    paths = api_names.public_paths()
    assert len(paths) == len(set(paths))
    import hwprofiles

    for name in hwprofiles.__all__:
        assert any(p.rsplit(".", 1)[-1] == name for p in paths), f"hwprofiles.{name} is not in the API reference"
    for path in paths:
        assert path.startswith("hwprofiles."), path
        resolve(path)  # it exists where the reference says
        api_names.group_of(path)  # and has a page


def test_every_public_class_and_function_has_its_own_docstring() -> None:
    missing = [
        path
        for path in api_names.public_paths()
        if (inspect.isclass(obj := resolve(path)) or inspect.isfunction(obj)) and not own_docstring(obj)
    ]
    assert not missing, f"public names without a docstring: {missing}"


def test_every_documented_name_has_a_docstring_as_the_site_reads_it() -> None:
    """Values (``__version__``, ``hookimpl``) have docstrings only in the source, where
    mkdocstrings reads them; a member without one would be left out of the reference."""
    griffe = pytest.importorskip("griffe", reason="griffe comes with the docs extra (mkdocstrings[python])")
    package = griffe.load("hwprofiles", search_paths=[str(ROOT / "src")], allow_inspection=False)
    missing = []
    for path in api_names.public_paths():
        obj = package[path.removeprefix("hwprofiles.")]
        if not (obj.docstring and obj.docstring.value.strip()):
            missing.append(path)
    for module in api_names.WHOLE_MODULES:
        for member in package[module.removeprefix("hwprofiles.")].members.values():
            if member.is_public and not member.is_alias and not (member.docstring and member.docstring.value.strip()):
                missing.append(member.path)
    assert not missing, f"documented names without a docstring: {missing}"


@pytest.mark.slow
def test_the_site_builds_strictly_with_every_generated_page(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (pip install 'hwprofiles[docs]')")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    built = subprocess.run(
        [mkdocs, "build", "--strict", "-d", str(site)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr[-4000:]

    home = (site / "index.html").read_text(encoding="utf-8")
    for profile in sorted((ROOT / "profiles").glob("*.yaml")):
        source = yaml.safe_load(profile.read_text(encoding="utf-8"))
        page = (site / "profiles" / source["name"] / "index.html").read_text(encoding="utf-8")
        assert f'href="profiles/{source["name"]}/"' in home, f"{profile.name} is not in the navigation"
        # a file that calls a number unsure has it listed among the guesses
        if "unsure" in profile.read_text(encoding="utf-8"):
            assert "The file marks these statements" in page, profile.name
        if "validation" not in source:
            assert "Not validated yet" in page, profile.name
    hermes = (site / "profiles" / "pcm-hermes" / "index.html").read_text(encoding="utf-8")
    assert "output_noise" in hermes and "0.04" in hermes and "Rasch" in hermes

    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    for command in ("train", "eval", "sweep", "transfer", "profiles-list", "profiles-import", "results-export"):
        assert f'id="hwprofiles-{command}"' in cli, command
    assert "--noise-scale" in cli

    api = "".join(p.read_text(encoding="utf-8") for p in (site / "reference" / "api").rglob("index.html"))
    for path in api_names.public_paths():
        assert f'id="{path}"' in api, f"{path} is not rendered in the API reference"

    kinds = (site / "reference" / "noise-kinds" / "index.html").read_text(encoding="utf-8")
    assert 'id="pcm_drift"' in kinds and "t0_s" in kinds

    from hwprofiles.profiles.schema import Profile

    fields = (site / "reference" / "profile-file" / "index.html").read_text(encoding="utf-8")
    for name in Profile.model_fields:
        assert f"<code>{name}</code>" in fields, f"profile field {name} is not in the profile file reference"
