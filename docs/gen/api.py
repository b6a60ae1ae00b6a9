"""The Python API reference: one page per group of public names, rendered by mkdocstrings.

Which names, and on which page, comes from ``api_names.py`` (the ``__all__`` of the public
modules), so a name added to the façade appears here, and a name without a docstring fails
``tests/test_docs_site.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_names  # noqa: E402


def main() -> None:
    grouped = api_names.pages()
    index = [
        "# Python API\n",
        "The public API: every name in `hwprofiles.__all__` and in the `__all__` of "
        + ", ".join(f"`{m}`" for m in api_names.PUBLIC_MODULES[1:])
        + ", and every plugin hook. Each is documented where it is defined; import the "
        "façade's names from `hwprofiles` itself (`hwprofiles.to_noisy`), the others from their "
        "package (`hwprofiles.noise.StageContext`). The tensor parts import torch on first use, "
        "so listing and validating profiles stays quick.\n",
    ]
    for group, paths in grouped.items():
        names = ", ".join(f"`{p.rsplit('.', 1)[-1]}`" for p in paths)
        index.append(f"- [{group.title}]({group.slug}.md): {group.intro} {names}")
        page = [f"# {group.title}\n", f"{group.intro}\n"]
        for path in paths:
            page.append(f"::: {path}\n    options:\n      heading_level: 2\n")
        with mkdocs_gen_files.open(f"reference/api/{group.slug}.md", "w") as handle:
            handle.write("\n".join(page))
    with mkdocs_gen_files.open("reference/api/index.md", "w") as handle:
        handle.write("\n".join(index) + "\n")


main()
