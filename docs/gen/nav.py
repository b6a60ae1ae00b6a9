"""A mkdocs hook: fills the navigation sections whose pages are generated.

A section of ``nav`` in mkdocs.yml that lists only ``DIR/index.md`` gets every other page
under ``DIR`` after it, in the order the generators wrote them, so a new shipped profile
or API group needs no edit of mkdocs.yml. Hooks run after the plugins' own ``on_files``,
so the generated pages are there.
"""

from __future__ import annotations

from typing import Any


def _fill(items: list[Any], pages: list[str]) -> None:
    for item in items:
        children = next(iter(item.values())) if isinstance(item, dict) else None
        if not isinstance(children, list):
            continue
        if len(children) == 1 and isinstance(children[0], str) and children[0].endswith("/index.md"):
            folder = children[0][: -len("index.md")]
            children += [p for p in pages if p.startswith(folder) and p != children[0] and "/" not in p[len(folder) :]]
        else:
            _fill(children, pages)


def on_files(files: Any, config: Any) -> Any:
    pages = [f.src_uri for f in files if f.src_uri.endswith(".md")]
    _fill(config["nav"], pages)
    return files
