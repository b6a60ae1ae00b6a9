"""One page per shipped profile (``profiles/*.yaml``), read with hwprofiles' own loader.

Each page shows what the file says (technology, description, periphery, each noise entry
with every parameter, set in the file or taken from the kind's defaults), the numbers the
file marks as guessed, its references, its validation (or that it has none yet) and the
file itself. ``profiles/index.md`` lists them all.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, code, table, text  # noqa: E402

from hwprofiles.profiles.schema import Profile, read_profile_file  # noqa: E402
from hwprofiles.untrusted import read_yaml_file  # noqa: E402

PROFILE_DIR = ROOT / "profiles"
# How a profile marks a number it could not source (NOISE-MODELS: "Where a value is
# marked *(unsure)*, the profile says so in its description"): the word unsure or assumed.
GUESS = re.compile(r"\b(unsure|assumed|assume|guess(ed)?)\b", re.IGNORECASE)
EMPHASIS = re.compile(r"\*([^*]+)\*")  # *(unsure)*: shown as (unsure) in a list already about guesses
UNWRAP = r"\1"
SENTENCE_END = re.compile(r"(?<=[.;])\s+(?=[A-Z(*])")
PERIPHERY = ("dac", "adc", "tile", "mapping")
PERIPHERY_TITLES = {"dac": "Input DAC", "adc": "Output ADC", "tile": "Tile", "mapping": "Weight mapping"}


def shipped_profiles() -> list[tuple[Path, Profile, dict[str, Any]]]:
    """Every shipped profile file with its validated profile and its raw data."""
    found = []
    for path in sorted(PROFILE_DIR.glob("*.y*ml")):
        raw = read_yaml_file(path)
        found.append((path, read_profile_file(path), raw if isinstance(raw, dict) else {}))
    return found


def guessed(profile: Profile) -> list[tuple[str, str]]:
    """(where, statement) for every statement of the file that marks a number as guessed."""
    found = [("description", s) for s in SENTENCE_END.split(profile.description.strip()) if GUESS.search(s)]
    for ref in profile.references:
        if not isinstance(ref, str) and ref.supports and GUESS.search(ref.supports):
            found.append((f"reference: {ref.citation.split('.')[0]}", ref.supports))
    for i, entry in enumerate(profile.noise, 1):
        if entry.note and GUESS.search(entry.note):
            found.append((f"noise entry {i} ({entry.kind})", entry.note))
    return found


def field_rows(model: Any, set_fields: set[str], skip: tuple[str, ...] = ()) -> list[list[str]]:
    """One table row per field of a pydantic object: name, value, where the value comes from, meaning."""
    rows = []
    values = model.model_dump(mode="json")
    for name, info in type(model).model_fields.items():
        if name in skip:
            continue
        origin = "file" if name in set_fields else "default"
        rows.append([code(name), code(_shown(values[name])), origin, text(info.description or "")])
    return rows


def _shown(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def periphery_section(profile: Profile) -> list[str]:
    out = ["## Periphery\n"]
    for key in PERIPHERY:
        part = getattr(profile, key)
        out.append(f"### {PERIPHERY_TITLES[key]}\n")
        if part is None:
            meaning = (Profile.model_fields[key].description or "").partition("null: ")[2]
            out.append(f"None ({code(key + ': null')}): {text(meaning)}\n")
            continue
        out.append(table(["field", "value", "from", "meaning"], field_rows(part, part.model_fields_set)))
    out.append("### Profile-wide settings\n")
    rows = []
    for name in ("placement", "noise_scale", "t_inference_s"):
        origin = "file" if name in profile.model_fields_set else "default"
        value = code(_shown(getattr(profile, name)))
        rows.append([code(name), value, origin, text(Profile.model_fields[name].description or "")])
    out.append(table(["field", "value", "from", "meaning"], rows))
    return out


def noise_section(profile: Profile) -> list[str]:
    out = ["## Noise\n"]
    if not profile.noise:
        out.append("No noise entries: this device adds no noise.\n")
        return out
    out.append(
        "Entries act in the stage each kind names ([concepts](../concepts.md#noise-kind)), in this "
        "order within a stage. *from*: the value is set in the file, or is the kind's default.\n"
    )
    for i, entry in enumerate(profile.noise, 1):
        out.append(f"### {i}. `{entry.kind}`\n")
        out.append(f"Kind reference: [`{entry.kind}`](../reference/noise-kinds.md#{entry.kind}).\n")
        rows = field_rows(entry, entry.model_fields_set, skip=("kind", "note"))
        out.append(table(["parameter", "value", "from", "meaning"], rows) if rows else "No parameters.\n")
        if entry.note:
            out.append(f"Note in the file: {text(entry.note)}\n")
    return out


def references_section(profile: Profile) -> list[str]:
    out = ["## References\n"]
    if not profile.references:
        return [*out, "The file cites no source.\n"]
    for ref in profile.references:
        if isinstance(ref, str):  # the schema turns bare strings into Reference objects
            out.append(f"- {text(ref)}")
            continue
        line = f"- {text(ref.citation)}"
        if ref.doi:
            line += f" [doi:{text(ref.doi)}](https://doi.org/{ref.doi})"
        if ref.url:
            line += f" [link]({ref.url})"
        if ref.supports:
            line += f"  \n  *Supports:* {text(ref.supports)}"
        out.append(line)
    return [*out, ""]


def validation_section(path: Path, profile: Profile, raw: dict[str, Any]) -> list[str]:
    """The file's ``validation`` entries: each published chip figure beside the figure
    reproduced under the profile, or why one is missing."""
    out = ["## Validation\n"]
    if profile.stress:
        out.append(
            "**A stress profile**: harsher than published chips on purpose; models are not expected to "
            "come near their float accuracy under it.\n"
        )
    if not profile.validation:
        out.append("**Not validated yet.** The file has no `validation` entry.\n")
        return out
    for entry in profile.validation:
        rows = []
        if entry.published is not None:
            p = entry.published
            rows.append(["published (a chip)", *_figure_cells(p), f"{text(p.conditions)} ({text(p.source)})"])
        if entry.reproduced is not None:
            r = entry.reproduced
            how = f"{text(r.method)}, {r.training_seeds} training seed(s) x {r.chips} chips; {text(r.conditions)}"
            rows.append(["reproduced (hwprofiles)", *_figure_cells(r), how])
        if rows:
            out.append(table(["figure", "network", "data", "accuracy", "float", "conditions / source"], rows))
            out.append("")
        if entry.not_validated:
            out.append(f"**Not validated{' yet' if entry.published else ''}:** {text(entry.not_validated)}\n")
    return out


def _figure_cells(figure: Any) -> list[str]:
    float_acc = "–" if figure.float_accuracy is None else f"{figure.float_accuracy:.1%}"
    return [text(figure.network), text(figure.data), f"{figure.accuracy:.1%}", float_acc]


def validation_summary(profile: Profile) -> tuple[str, str]:
    """The index's two columns: the published chip figure, and whether hwprofiles reproduced it."""
    published = [e.published for e in profile.validation if e.published is not None]
    reproduced = [e.reproduced for e in profile.validation if e.reproduced is not None]
    first = (
        f"{text(published[0].network)}, {text(published[0].data)}: {published[0].accuracy:.1%}" if published else "–"
    )
    done = (
        f"{text(reproduced[0].network)}, {text(reproduced[0].data)}: {reproduced[0].accuracy:.1%} "
        f"(float {reproduced[0].float_accuracy:.1%})"
        if reproduced
        else "not yet"
    )
    return first, done + (" · stress profile" if profile.stress else "")


def profile_page(path: Path, profile: Profile, raw: dict[str, Any]) -> str:
    out = [
        f"# {profile.name}\n",
        f"Technology: **{text(profile.technology)}** · file: `profiles/{path.name}` · "
        f"load it with `hwprofiles.load_profile({profile.name!r})` or `--profile {profile.name}`.\n",
        html.escape(" ".join(profile.description.split()), quote=False) + "\n",
    ]
    out += periphery_section(profile)
    out += noise_section(profile)
    out.append("## What is guessed\n")
    marks = guessed(profile)
    if marks:
        out.append("The file marks these statements as not resting on a measurement (*unsure* or *assumed*):\n")
        out += [f"- *{text(where)}*: {text(EMPHASIS.sub(UNWRAP, statement))}" for where, statement in marks]
        out.append("")
    else:
        out.append("The file marks no number as guessed: each rests on the references below.\n")
    out += references_section(profile)
    out += validation_section(path, profile, raw)
    out.append("## The file\n")
    out.append(f'??? note "profiles/{path.name}"\n')
    source = path.read_text(encoding="utf-8")
    out.append("    ```yaml\n" + "".join(f"    {line}\n" for line in source.splitlines()) + "    ```\n")
    return "\n".join(out)


def index_page(found: list[tuple[Path, Profile, dict[str, Any]]]) -> str:
    rows = []
    for _, profile, _raw in found:
        kinds = ", ".join(code(k) for k in profile.kinds()) or "none"
        published, reproduced = validation_summary(profile)
        rows.append(
            [
                f"[{profile.name}]({profile.name}.md)",
                text(profile.technology),
                kinds,
                str(len(guessed(profile))),
                published,
                reproduced,
            ]
        )
    return "\n".join(
        [
            "# Shipped profiles\n",
            "The profile library that comes with hwprofiles, one file per device in `profiles/`. "
            "Each page below is generated from its file when the site is built: the periphery, every "
            "noise entry with all its parameters (set in the file or the kind's default), the numbers the "
            "file marks as guessed, its references and its validation. "
            "`hwprofiles profiles list` and `hwprofiles profiles show NAME` print the same from the "
            "command line; [concepts](../concepts.md#profile) explains the fields.\n",
            table(["profile", "technology", "noise kinds", "guessed statements", "published chip", "reproduced"], rows),
        ]
    )


def main() -> None:
    found = shipped_profiles()
    for path, profile, raw in found:
        with mkdocs_gen_files.open(f"profiles/{profile.name}.md", "w") as handle:
            handle.write(profile_page(path, profile, raw))
    with mkdocs_gen_files.open("profiles/index.md", "w") as handle:
        handle.write(index_page(found))


main()
