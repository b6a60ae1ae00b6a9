"""What the page generators share: the checkout's package on the path, Markdown escaping, tables.

The generators run inside ``mkdocs build`` (mkdocs-gen-files); each puts this folder and
the checkout's ``src`` first on ``sys.path``, so the site documents the code beside it
rather than whatever hwprofiles the environment has installed.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

INLINE_CODE = re.compile(r"(``[^`]+``|`[^`]+`)")
BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
ANNOTATED = re.compile(r"Annotated\[(\w+), [^\]]*\]")  # StrictInt -> int
OPTIONAL = re.compile(r"^Optional\[(.*)\]$")
ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const):`~?(?:[\w.]*\.)?(?P<name>\w+)`")
QUALIFIED = re.compile(r"\b(?:[a-z_][a-z0-9_]*\.)+([A-Z]\w*)")
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
    """A docstring as Markdown paragraphs: inline code (``x`` or `x`) kept as code, Sphinx
    roles shown as code, HTML and ``*`` escaped elsewhere, so formulas such as
    ``y * N(1, sigma^2)`` show as written."""
    paragraphs = []
    for block in docstring.strip().split("\n\n"):
        parts = INLINE_CODE.split(ROLE.sub(r"`\g<name>`", " ".join(block.split())))
        # split() with a capturing group: odd items are the code spans
        shown = [p if i % 2 else html.escape(p, quote=False).replace("*", "\\*") for i, p in enumerate(parts)]
        paragraphs.append("".join(shown))
    return "\n\n".join(paragraphs)


def type_name(annotation: Any) -> str:
    """A field's type as written in a signature, classes without their module."""
    plain = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    shown = ANNOTATED.sub(r"\1", QUALIFIED.sub(r"\1", plain or str(annotation).replace("typing.", "")))
    return OPTIONAL.sub(r"\1 | None", shown)


def bounds(info: Any) -> str:
    """A pydantic field's numeric bounds (``>= 0, <= 1``)."""
    found = []
    for meta in info.metadata:
        for attr, symbol in BOUNDS.items():
            value = getattr(meta, attr, None)
            if value is not None:
                found.append(f"{symbol} {value}")
    return ", ".join(found)


def default(info: Any) -> str:
    """A pydantic field's default as YAML writes it, or ``required``."""
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.get_default(call_default_factory=True)
    if hasattr(value, "model_dump"):  # a nested model: its fields' defaults
        return code(json.dumps(value.model_dump(mode="json")))
    if isinstance(value, bool):
        return code("true" if value else "false")
    return code("null" if value is None else value)


def field_table(model: Any, skip: tuple[str, ...] = ()) -> str:
    """Every field of a pydantic model: name, type, default, bounds, meaning."""
    rows = [
        [code(name), code(type_name(info.annotation)), default(info), bounds(info), text(info.description or "")]
        for name, info in model.model_fields.items()
        if name not in skip
    ]
    return table(["field", "type", "default", "bounds", "meaning"], rows)
