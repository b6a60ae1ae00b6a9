"""The package's shape, as docs/architecture.md draws it: layers that import in one
direction, modules that use each other's public names only, and modules small enough
to read in one sitting. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "hwprofiles"
MAX_LINES = 400

# docs/architecture.md draws these layers; a module may import from its own layer and the
# layers above it in this list (lower in the drawing), never from one below it here.
# A module is placed by the longest prefix that names it; the package itself (the API
# facade) sits with the applications.
LAYERS = [
    (
        "foundations",
        [
            "errors",
            "hookspecs",
            "untrusted",
            "io",
            "storage",
            "lazy",
            "version",
            "progress",
            "named_registry",
            "cpu_tuning",
        ],
    ),
    ("entry models", ["entries"]),
    ("registries and plugins", ["registry", "models", "plugins", "builtin"]),
    ("profiles", ["profiles"]),
    ("noise kinds", ["noise"]),
    ("twins", ["nn"]),
    ("experiments", ["train", "eval", "executors", "results", "data", "fit", "aihwkit_bridge", "testing", "tracking"]),
    ("applications", ["cli", "__main__", "demo"]),
]


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: set[str] = field(default_factory=set)  # package modules imported at run time
    private_uses: list[str] = field(default_factory=list)

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (no edge at run time)."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    skipped.add(id(sub))
    return skipped


def load_modules() -> dict[str, Module]:
    modules = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        modules[module_name(path)] = Module(module_name(path), path, ast.parse(path.read_text(encoding="utf-8")))
    for module in modules.values():
        analyse(module, modules)
    return modules


def imported_from(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def analyse(module: Module, modules: dict[str, Module]) -> None:
    skipped = type_checking_only(module.tree)
    aliases: dict[str, str] = {}  # local name -> package module it is bound to
    for node in ast.walk(module.tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE and alias.name in modules:
                    module.imports.add(alias.name)
                    if alias.asname:
                        aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = imported_from(module, node)
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                target = f"{source}.{alias.name}"
                if target in modules:  # a submodule
                    module.imports.add(target)
                    aliases[alias.asname or alias.name] = target
                    continue
                module.imports.add(source)
                if is_private(alias.name) and source != module.name:
                    module.private_uses.append(f"from {source} import {alias.name}")
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and is_private(node.attr):
            target = aliases.get(node.value.id)
            if target is not None and target != module.name:
                module.private_uses.append(f"{target}.{node.attr}")
    module.imports.discard(module.name)


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for other in sorted(modules[name].imports):
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == name:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(modules):
        if name not in index:
            visit(name)
    return found


MODULES = load_modules()


def test_the_import_graph_has_no_cycle():
    assert cycles(MODULES) == []


def layer_of(name: str) -> int | None:
    if name == PACKAGE:
        return len(LAYERS) - 1
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            full = f"{PACKAGE}.{prefix}"
            if (name == full or name.startswith(full + ".")) and (best is None or len(full) > best[1]):
                best = (index, len(full))
    return best[0] if best else None


def test_every_module_has_a_layer_and_imports_only_from_its_own_or_lower_ones():
    unplaced = sorted(name for name in MODULES if layer_of(name) is None)
    assert unplaced == [], "place each new module in LAYERS (and in docs/architecture.md)"
    upward = [
        f"{m.name} ({LAYERS[layer_of(m.name)][0]}) imports {other} ({LAYERS[layer_of(other)][0]})"
        for m in MODULES.values()
        for other in sorted(m.imports)
        if layer_of(other) > layer_of(m.name)  # type: ignore[operator]
    ]
    assert upward == []


def test_the_layer_check_sees_an_upward_import():
    assert layer_of("hwprofiles.nn.mvm") > layer_of("hwprofiles.noise.base") > layer_of("hwprofiles.errors")
    assert layer_of("hwprofiles.profiles.schema") == layer_of("hwprofiles.profiles") and layer_of("hwprofiles") == 7
    assert layer_of("hwprofiles.newthing") is None


def test_no_module_uses_another_modules_private_names():
    uses = {m.name: m.private_uses for m in MODULES.values() if m.private_uses}
    assert uses == {}


def test_no_module_is_over_about_400_lines():
    long = {m.name: n for m in MODULES.values() if (n := len(m.path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_hook_markers_and_specs_import_nothing_of_the_package():
    assert MODULES[f"{PACKAGE}.hookspecs"].imports == set()


def test_every_exception_class_lives_in_errors():
    def is_exception(node: ast.ClassDef) -> bool:
        return any(ast.unparse(b).endswith(("Error", "Exception", "Warning")) for b in node.bases)

    elsewhere = [
        f"{m.name}.{node.name}"
        for m in MODULES.values()
        if m.name != f"{PACKAGE}.errors"
        for node in ast.walk(m.tree)
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and is_exception(node)
    ]
    assert elsewhere == []


@pytest.mark.parametrize(
    "code, expected",
    [
        ("from hwprofiles.b import _hidden\n", ["from hwprofiles.b import _hidden"]),
        ("from hwprofiles import b\nb._hidden()\n", ["hwprofiles.b._hidden"]),
        ("import hwprofiles.b as bee\nbee._x = 1\n", ["hwprofiles.b._x"]),
        ("from hwprofiles.b import public, __doc__\n", []),
    ],
)
def test_the_checker_sees_private_names_however_they_are_reached(code, expected):
    modules = {
        "hwprofiles.a": Module("hwprofiles.a", SRC / PACKAGE / "a.py", ast.parse(code)),
        "hwprofiles.b": Module("hwprofiles.b", SRC / PACKAGE / "b.py", ast.parse("")),
    }
    analyse(modules["hwprofiles.a"], modules)
    assert modules["hwprofiles.a"].private_uses == expected


def test_the_checker_finds_a_cycle_through_a_function_level_import_but_not_a_type_checking_one():
    def graph(b_code: str) -> dict[str, Module]:
        modules = {
            "hwprofiles.a": Module("hwprofiles.a", SRC / PACKAGE / "a.py", ast.parse("import hwprofiles.b\n")),
            "hwprofiles.b": Module("hwprofiles.b", SRC / PACKAGE / "b.py", ast.parse(b_code)),
        }
        for module in modules.values():
            analyse(module, modules)
        return modules

    assert cycles(graph("def f():\n    from hwprofiles import a\n")) == [["hwprofiles.a", "hwprofiles.b"]]
    assert cycles(graph("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hwprofiles import a\n")) == []
