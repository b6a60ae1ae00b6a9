"""The noise-kind reference: every kind hwprofiles itself registers, from its entry model.

For each kind: what its entry model's docstring says, the stages its implementation acts
in, and every field a profile entry may set (type, default, bounds, meaning), so the page
cannot disagree with what ``hwprofiles profiles schema`` accepts.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code, field_table, prose, table, text  # noqa: E402

from hwprofiles import registry  # noqa: E402
from hwprofiles.noise.base import STAGES  # noqa: E402

BUILTIN = "builtin"  # the plugin name the core's own kinds are registered under


def kind_section(model: Any) -> str:
    entry = model.entry_model
    implementation = model.implementation
    stages = [s for s in STAGES if s in implementation.stages]
    out = [
        f"## {model.kind} {{#{model.kind}}}\n",
        f"Entry model `{entry.__module__}.{entry.__qualname__}`; implementation "
        f"`{implementation.__module__}.{implementation.__qualname__}`; acts in: "
        + ", ".join(code(s) for s in stages)
        + ".\n",
        prose(inspect.cleandoc(entry.__doc__ or "")) + "\n",
    ]
    out.append(field_table(entry, skip=("kind",)))
    return "\n".join(out)


def main() -> None:
    models = sorted((m for m in registry.noise_models().values() if m.owner == BUILTIN), key=lambda m: m.kind)
    page = [
        "# Noise kinds\n",
        "Every noise kind hwprofiles ships, generated from its entry model (the fields a profile's "
        "`noise:` entry may set) and its implementation (the stages it acts in; "
        "[concepts](../concepts.md#noise-kind) gives their order). Every magnitude is multiplied by the "
        "profile's `noise_scale`. Plugins add kinds of their own; `hwprofiles plugins` lists every "
        "kind loaded, and `hwprofiles profiles schema` prints the JSON Schema with all of them.\n",
        table(
            ["kind", "acts in", "entry model"],
            [
                [
                    f"[`{m.kind}`](#{m.kind})",
                    ", ".join(s for s in STAGES if s in m.implementation.stages),
                    text((inspect.getdoc(m.entry_model) or "").partition("\n")[0]),
                ]
                for m in models
            ],
        ),
    ]
    page += [kind_section(m) for m in models]
    with mkdocs_gen_files.open("reference/noise-kinds.md", "w") as handle:
        handle.write("\n".join(page))


main()
