"""A griffe extension: the package's docstrings, written for Python's help(), read as Markdown.

- Examples (``>>>`` lines and their output) become ``pycon`` code blocks: they stand
  outside any ``Examples:`` section, and as Markdown ``>>>`` would start nested block
  quotes and an output such as ``['Linear']`` a link.
- Sphinx roles (``:func:`~hwprofiles.program```) become inline code naming the object
  (``program``), as ``help()`` readers understand them.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const):`(?P<tilde>~?)(?P<target>[^`]+)`")


def _role(match: re.Match[str]) -> str:
    target = match["target"]
    return f"`{target.rsplit('.', 1)[-1] if match['tilde'] else target}`"


def plain_roles(text: str) -> str:
    """``text`` with every Sphinx cross-reference role shown as inline code."""
    return ROLE.sub(_role, text)


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
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


class FenceDoctests(Extension):
    """Rewrites every docstring griffe loads, as the module docstring says."""

    def on_object(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(plain_roles(obj.docstring.value))
