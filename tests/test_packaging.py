"""hwprofiles installs like a library: what it imports is declared, optional features sit in
extras, and ``python -m build`` makes an sdist and a wheel that carry the profile library and
run in a fresh virtual environment.

The build runs without build isolation, so nothing is downloaded: the ``dev`` extra installs
``build`` and ``setuptools``. The fresh environment gets the wheel (``pip --no-deps``) plus one
path line to a copy of this environment's site-packages without hwprofiles and without
torchvision, so the installed wheel alone provides hwprofiles and the core is shown to work
without the ``vision`` extra; installing torch afresh would cost minutes and a download.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import hwprofiles
from hwprofiles.errors import HwProfilesError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "hwprofiles"
SHIPPED = sorted(p.name for p in (ROOT / "profiles").glob("*.yaml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

# Imported by src but rightly not declared, and why.
UNDECLARED = {
    "pydantic-core": "pydantic's own core; pydantic pins the release it needs",
}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return normalised(match[0])


def imports_of(path: Path) -> tuple[set[str], set[str]]:
    """Top-level names of the modules a file imports at import time, and inside functions
    (what ``if TYPE_CHECKING:`` imports is for the type checker only)."""
    at_import: set[str] = set()
    lazily: set[str] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child, in_function)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                names = [node.module or ""] if node.level == 0 else []
            (lazily if in_function else at_import).update(n.split(".")[0] for n in names if n)
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return at_import, lazily


def distributions_of(modules: set[str]) -> dict[str, str]:
    """Each third-party module's distribution (normalised name), as installed here."""
    providers = metadata.packages_distributions()
    third_party = {m for m in modules if m not in sys.stdlib_module_names and m != "hwprofiles"}
    missing = sorted(m for m in third_party if m not in providers)
    assert not missing, f"no installed distribution provides {missing}"
    return {m: normalised(providers[m][0]) for m in third_party}


def test_every_third_party_import_is_declared() -> None:
    at_import: set[str] = set()
    lazily: set[str] = set()
    for path in SRC.rglob("*.py"):
        now, later = imports_of(path)
        at_import |= now
        lazily |= later
    core = {requirement_name(r) for r in PYPROJECT["dependencies"]}
    extras = {requirement_name(r) for reqs in PYPROJECT["optional-dependencies"].values() for r in reqs}
    undeclared_core = {m: d for m, d in distributions_of(at_import).items() if d not in core | set(UNDECLARED)}
    assert not undeclared_core, f"imported when hwprofiles is imported but not in dependencies: {undeclared_core}"
    undeclared = {m: d for m, d in distributions_of(lazily).items() if d not in core | extras | set(UNDECLARED)}
    assert not undeclared, f"imported on use but in neither dependencies nor an extra: {undeclared}"
    assert {"numpy", "torch"} <= core and "torchvision" not in core


def test_the_dev_extra_installs_every_extra_and_all_every_feature() -> None:
    extras = PYPROJECT["optional-dependencies"]

    def included(name: str) -> set[str]:
        (self_reference,) = [r for r in extras[name] if requirement_name(r) == "hwprofiles"]
        return set(re.search(r"\[(.*)\]", self_reference)[1].split(","))  # type: ignore[index]

    features = set(extras) - {"dev", "all", "docs"}
    assert features >= {"vision", "ray", "parquet", "tracking"}
    assert included("all") == features
    assert included("dev") == set(extras) - {"dev", "all"}  # `make test` installs .[dev]
    assert all(not re.search(r"==", r) for r in PYPROJECT["dependencies"]), "core dependencies are ranges, not pins"


def test_torchvision_models_without_torchvision_name_the_vision_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from hwprofiles.data import load_dataset
    from hwprofiles.models import get_model

    monkeypatch.setitem(sys.modules, "torchvision", None)  # any import of it now fails
    monkeypatch.setitem(sys.modules, "torchvision.models", None)
    assert get_model("lenet5", in_channels=1, num_classes=10) is not None  # the zoo's own need none
    with pytest.raises(HwProfilesError, match=re.escape("pip install 'hwprofiles[vision]'")):
        get_model("torchvision:resnet18")
    with pytest.raises(HwProfilesError, match=re.escape("pip install 'hwprofiles[vision]'")):
        load_dataset("cifar10", root="/nonexistent", download=True)


# ------------------------------------------------------------------ the built distributions


def source_copy(into: Path) -> Path:
    """The files a build reads, copied, so that building writes nothing into the checkout
    (the symbolic link src/hwprofiles/profile_data stays a link, as in a checkout)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, into / name)
    shutil.copytree(ROOT / "src", into / "src", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "profiles", into / "profiles", ignore=ignore)
    assert (into / "src" / "hwprofiles" / "profile_data").is_symlink() == (SRC / "profile_data").is_symlink()
    return into


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build --no-isolation``: the sdist, and the wheel built from it."""
    pytest.importorskip("build", reason="the build package is in the dev extra: pip install -e '.[dev]'")
    setuptools = pytest.importorskip("setuptools", reason="setuptools is in the dev extra")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(f"building needs setuptools>=77 (found {setuptools.__version__}); it is in the dev extra")
    tmp = tmp_path_factory.mktemp("build")
    source = source_copy(tmp_path_factory.mktemp("source"))
    out = tmp / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("hwprofiles-*.tar.gz")
    (wheel,) = out.glob("hwprofiles-*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_the_sdist_carries_the_profile_library_as_real_files(dists: dict[str, Path]) -> None:
    top = f"hwprofiles-{hwprofiles.__version__}"
    with tarfile.open(dists["sdist"]) as sdist:
        for name in SHIPPED:
            member = sdist.getmember(f"{top}/src/hwprofiles/profile_data/{name}")
            assert member.isfile(), f"{name} is not a regular file in the sdist"
            assert sdist.extractfile(member).read() == (ROOT / "profiles" / name).read_bytes()  # type: ignore[union-attr]
        names = set(sdist.getnames())
    assert {f"{top}/LICENSE", f"{top}/README.md", f"{top}/pyproject.toml"} <= names
    assert not any(n.endswith(".pt") or "/hwprofiles-out/" in n or "/.venv/" in n for n in names)


def test_the_wheel_carries_the_profile_library_and_declares_its_dependencies(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        for name in SHIPPED:
            assert wheel.read(f"hwprofiles/profile_data/{name}") == (ROOT / "profiles" / name).read_bytes()
        assert "hwprofiles/py.typed" in wheel.namelist()
        (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [
            line.split(":", 1)[1].strip()
            for line in wheel.read(meta).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    unconditional = {requirement_name(r) for r in requires if "extra ==" not in r}
    assert {"torch", "numpy", "pydantic", "pyyaml"} <= unconditional and "torchvision" not in unconditional
    assert any(requirement_name(r) == "torchvision" and 'extra == "vision"' in r for r in requires)


def site_packages_without(excluded: tuple[str, ...], into: Path) -> Path:
    """A folder of links to this environment's site-packages entries, except those whose
    name starts with one of ``excluded`` (hwprofiles itself, torchvision)."""
    into.mkdir()
    folders = dict.fromkeys(Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib"))
    for folder in folders:
        for entry in folder.iterdir():
            if not entry.name.lower().startswith(excluded) and not (into / entry.name).exists():
                (into / entry.name).symlink_to(entry)
    return into


@pytest.mark.slow
def test_the_wheel_runs_in_a_fresh_environment_without_torchvision(dists: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HWPROFILES_", "PYTHON", "PIP_", "VIRTUAL_ENV"))}
    env |= {"PIP_NO_INDEX": "1", "HWPROFILES_USER_DIR": str(tmp_path / "user"), "MPLCONFIGDIR": str(tmp_path / "mpl")}

    def run(*args: str | Path) -> str:
        done = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
        )
        assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done.stdout

    run(python, "-m", "pip", "install", "-q", "--no-deps", dists["wheel"])
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    deps = site_packages_without(("hwprofiles", "torchvision", "__editable__"), tmp_path / "deps")
    (purelib / "test-environment.pth").write_text(f"{deps}\n")

    where = run(
        python, "-c", "import importlib.util as u, hwprofiles; print(hwprofiles.__file__, u.find_spec('torchvision'))"
    )
    assert where.split() == [str(purelib / "hwprofiles" / "__init__.py"), "None"]
    listed = json.loads(run(bin_dir / "hwprofiles", "profiles", "list", "--json"))
    assert sorted(f"{p['name']}.yaml" for p in listed) == SHIPPED
    assert all(p["valid"] and Path(p["path"]).parent == purelib / "hwprofiles" / "profile_data" for p in listed)

    out = tmp_path / "demo"
    run(bin_dir / "hwprofiles", "demo", "--quick", "--out", out)
    report = (out / "report.md").read_text()
    assert "Data: synthetic" in report and "nit:gaussian-additive" in report and "## What this shows" in report
    assert (out / "sweep-gaussian-additive-lenet5.png").stat().st_size > 0
