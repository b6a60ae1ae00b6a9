"""The ``>>>`` examples in the docstrings of every module of :mod:`hwprofiles` run as tests.

One test per module that has examples, so a failing example names its module. A
module whose import needs an optional package that is not installed is skipped, not
failed; ``__main__`` modules are never imported (that would run the program). Examples
known to be wrong in modules under repair are listed in ``KNOWN_WRONG`` with the
reason; such a module is marked ``xfail(strict=True)``, so fixing it makes the test
fail until its entry is removed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import hwprofiles

# module name -> what is wrong in its examples (remove the entry once fixed)
KNOWN_WRONG: dict[str, str] = {}

FINDER = doctest.DocTestFinder(exclude_empty=True)


def module_names() -> list[str]:
    names = [hwprofiles.__name__]
    for info in pkgutil.walk_packages(hwprofiles.__path__, prefix=hwprofiles.__name__ + "."):
        if info.name.rpartition(".")[2] != "__main__":
            names.append(info.name)
    return sorted(names)


def _params() -> list:
    params = []
    for name in module_names():
        marks = []
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if not error.name or error.name.startswith(hwprofiles.__name__):
                raise
            marks.append(pytest.mark.skip(reason=f"needs the optional package {error.name}"))
        else:
            if not any(t.examples for t in FINDER.find(module, name)):
                continue
        if name in KNOWN_WRONG:
            marks.append(pytest.mark.xfail(reason=KNOWN_WRONG[name], strict=True))
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("module_name", _params())
def test_docstring_examples(module_name: str, clean_hwprofiles: None) -> None:
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in FINDER.find(module, module_name) if t.examples]
    failures = []
    for test in tests:
        out: list[str] = []
        result = runner.run(test, out=out.append, clear_globs=True)
        if result.failed:
            failures.append("".join(out))
    assert not failures, "\n".join(failures)
