"""The public API the site documents: which names, where each is defined, on which page.

The public names are the ``__all__`` of the package façade and of the public sub-packages
below; each is documented once, at the module that defines it, on the page of the group
that module belongs to. ``docs/gen/api.py`` writes the pages from this, and
``tests/test_docs_site.py`` checks that every name has a docstring.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

import common  # noqa: F401  (puts the checkout's src first on sys.path)

PUBLIC_MODULES = ("hwprofiles", "hwprofiles.nn", "hwprofiles.noise", "hwprofiles.testing")
"""The modules whose ``__all__`` is the public API."""

WHOLE_MODULES = ("hwprofiles.hookspecs",)
"""Modules documented whole: every hook a plugin can implement."""

VALUES = {
    "hookimpl": "hwprofiles.hookspecs.hookimpl",
    "__version__": "hwprofiles.version.__version__",
    "STAGES": "hwprofiles.noise.base.STAGES",
    "CHECKS": "hwprofiles.testing.conformance.CHECKS",
}
"""Public names that are values rather than classes or functions (these know no module of
their own): where each is assigned."""


@dataclass(frozen=True)
class Group:
    slug: str
    title: str
    intro: str
    modules: tuple[str, ...]  # a name belongs to the first group one of whose prefixes its module has


GROUPS = (
    Group(
        "profiles",
        "Profiles",
        "Reading, validating and writing hardware profiles, and the models of their parts "
        "(every field, with its default and bounds: [Profile files](../profile-file.md)).",
        ("hwprofiles.profiles", "hwprofiles.entries"),
    ),
    Group(
        "conversion",
        "Noisy twins",
        "Turning a model into its noisy twin and back, drawing chip instances, calibration, QAT.",
        ("hwprofiles.nn",),
    ),
    Group(
        "noise-kinds",
        "Noise kinds",
        "The interface a noise kind implements, and the registry of kinds.",
        ("hwprofiles.noise", "hwprofiles.registry"),
    ),
    Group(
        "plugins",
        "Plugins",
        "The plugin manager, every hook a plugin can implement, and the conformance kit for noise kinds.",
        ("hwprofiles.plugins", "hwprofiles.hookspecs", "hwprofiles.testing"),
    ),
    Group(
        "experiments",
        "Models, data and evaluation",
        "The model zoo, datasets, evaluation over chip instances and the results store.",
        ("hwprofiles.models", "hwprofiles.data", "hwprofiles.eval", "hwprofiles.results"),
    ),
    Group("errors", "Errors", "Every exception and warning hwprofiles raises on purpose.", ("hwprofiles.errors",)),
    Group("version", "Version", "The package version.", ("hwprofiles.version",)),
)


def definition(module: str, name: str) -> str:
    """The dotted path where ``module.name`` is defined (``hwprofiles.to_noisy`` ->
    ``hwprofiles.nn.convert.to_noisy``)."""
    if name in VALUES:
        return VALUES[name]
    obj = getattr(importlib.import_module(module), name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    raise LookupError(
        f"{module}.{name} is a value, not a class or function: add where it is assigned to VALUES in {__file__}"
    )


def public_paths() -> list[str]:
    """Every documented name, as the dotted path of its definition, in façade order, once each."""
    paths: dict[str, None] = {}
    for module in PUBLIC_MODULES:
        for name in importlib.import_module(module).__all__:
            paths.setdefault(definition(module, name))
    return list(paths)


def group_of(path: str) -> Group:
    for group in GROUPS:
        if any(path == prefix or path.startswith(prefix + ".") for prefix in group.modules):
            return group
    raise LookupError(f"{path} belongs to no group of the API reference: add its module to GROUPS in {__file__}")


def pages() -> dict[Group, list[str]]:
    """The paths each group's page documents, whole modules included."""
    grouped: dict[Group, list[str]] = {group: [] for group in GROUPS}
    for path in [*public_paths(), *WHOLE_MODULES]:
        if not any(path.startswith(module + ".") for module in WHOLE_MODULES):  # shown with its module
            grouped[group_of(path)].append(path)
    return {group: paths for group, paths in grouped.items() if paths}
