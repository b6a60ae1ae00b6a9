"""What the page generators share: the checkout's package on the path, Markdown escaping, tables.

The generators run inside ``mkdocs build`` (mkdocs-gen-files); each puts this folder and
the checkout's ``src`` first on ``sys.path``, so the site documents the code beside it
rather than whatever hwprofiles the environment has installed.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

INLINE_CODE = re.compile(r"(``[^`]+``|`[^`]+`)")
ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


def text(value: object) -> str:
    """``value`` as inline Markdown text: HTML and the characters that would start
    emphasis or end a table cell are escaped; line breaks become spaces."""
    escaped = html.escape(str(value), quote=False)
    for char in ("\\", "*", "|", "`", "[", "]"):
        escaped = escaped.replace(char, "\\" + char)
    return " ".join(escaped.split())


def code(value: object) -> str:
    """``value`` as inline code (the tables extension does not split cells inside code spans)."""
    shown = " ".join(str(value).split())
    fence = "``" if "`" in shown else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{shown}{pad}{fence}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table; cells are taken as they are (escape them with :func:`text`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def prose(docstring: str) -> str:
    """A docstring as Markdown paragraphs: inline code (``x`` or `x`) kept as code, HTML
    and ``*`` escaped elsewhere, so formulas such as ``y * N(1, sigma^2)`` show as written."""
    paragraphs = []
    for block in docstring.strip().split("\n\n"):
        parts = INLINE_CODE.split(" ".join(block.split()))
        # split() with a capturing group: odd items are the code spans
        shown = [p if i % 2 else html.escape(p, quote=False).replace("*", "\\*") for i, p in enumerate(parts)]
        paragraphs.append("".join(shown))
    return "\n\n".join(paragraphs)
