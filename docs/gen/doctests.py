"""A griffe extension: the package's docstrings, written for Python's help(), read as Markdown.

- Examples (``>>>`` lines and their output) become ``pycon`` code blocks: they stand
  outside any ``Examples:`` section, and as Markdown ``>>>`` would start nested block
  quotes and an output such as ``['Linear']`` a link; ``# doctest:`` directives are
  dropped.
- A paragraph ending in ``::`` (reStructuredText's "a literal block follows") ends in
  ``:``; the indented block after it is already code in Markdown.
- Sphinx field lists of the hook specifications (``:param name: ...``,
  ``:return: ...``) become a list.
- Sphinx roles (``:func:`~hwprofiles.program```) become inline code naming the object
  (``program``), as ``help()`` readers understand them.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

FIELD = re.compile(r"^:(?P<field>param|returns?|raises?)\s*(?P<name>[\w.]*):\s*(?P<rest>.*)$")
DOCTEST_DIRECTIVE = re.compile(r"\s*# doctest:.*$")
ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const):`(?P<tilde>~?)(?P<target>[^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match["target"]
    return f"`{target.rsplit('.', 1)[-1] if match['tilde'] else target}`"


def plain_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role shown as inline code."""
    return ROLE.sub(_role, text)


def plain_literal_markers(text: str) -> str:
    """``text`` with reStructuredText's ``::`` before a literal block made a colon."""
    lines = [line[:-1] if line.endswith("::") and line.strip() != "::" else line for line in text.splitlines()]
    return "\n".join(line for line in lines if line.strip() != "::")


def plain_fields(text: str) -> str:
    """``text`` with Sphinx field lines (``:param name: what``) made a Markdown list."""
    out: list[str] = []
    in_list = False
    for line in text.splitlines():
        match = FIELD.match(line)
        if match is None:
            in_list = in_list and line.startswith(" ")  # an indented line continues the item
            out.append(line)
            continue
        if not in_list and out and out[-1].strip():
            out.append("")  # a list must not continue a paragraph
        field, name = match["field"], match["name"]
        label = f"`{name}`" if field == "param" else ("returns" if field.startswith("return") else f"raises `{name}`")
        out.append(f"- {label}: {match['rest']}")
        in_list = True
    return "\n".join(out)


def fence_doctests(text: str) -> str:
    """``text`` with every run of lines that starts with ``>>>`` (up to a blank line) fenced."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.lstrip().startswith(">>>"):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if out and out[-1].strip():
            out.append("")  # a fence must not continue a paragraph
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(DOCTEST_DIRECTIVE.sub("", lines[i]))
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class FenceDoctests(Extension):
    """Rewrites every docstring griffe loads, as the module docstring says."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            value = plain_fields(plain_literal_markers(plain_roles(obj.docstring.value)))
            obj.docstring.value = fence_doctests(value)
