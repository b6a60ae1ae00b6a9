"""The profile file reference: every field a profile may hold, from the schema's models.

Generated from ``hwprofiles.profiles.schema`` (``Profile`` and the models of its parts),
so the page says what ``hwprofiles profiles validate`` accepts: types, defaults, bounds
and the description each field carries.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import field_table, prose  # noqa: E402

from hwprofiles.profiles.schema import ADC, DAC, Mapping, Profile, Reference, Tile  # noqa: E402

PARTS = (("references", Reference), ("dac", DAC), ("adc", ADC), ("tile", Tile), ("mapping", Mapping))


def main() -> None:
    page = [
        "# Profile files\n",
        "Every field a profile file may hold, generated from the schema (`hwprofiles.profiles.schema`). "
        "A field not listed is an error, as is a number outside its bounds; `hwprofiles profiles validate "
        "FILE` checks a file and `hwprofiles profiles schema` prints the JSON Schema for editors. "
        "[Concepts](../concepts.md#profile) explains what the fields mean together; the entries of "
        "`noise:` are in the [noise-kind reference](noise-kinds.md).\n",
        "## The profile {#profile}\n",
        prose(inspect.cleandoc(Profile.__doc__ or "")) + "\n",
        field_table(Profile),
    ]
    for key, model in PARTS:
        page += [f"## `{key}` {{#{key}}}\n", prose(inspect.cleandoc(model.__doc__ or "")) + "\n", field_table(model)]
    with mkdocs_gen_files.open("reference/profile-file.md", "w") as handle:
        handle.write("\n".join(page))


main()
