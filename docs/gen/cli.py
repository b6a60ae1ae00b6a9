"""The command-line reference, generated from the Typer app itself.

Walks the click command tree that ``typer.main.get_command`` builds from
``hwprofiles.cli.root.app`` and writes, for every command and sub-command, its help text,
usage line, arguments and options with the help each one prints. A new command or option
appears here without an edit.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import mkdocs_gen_files
import typer.main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import code, prose, table, text  # noqa: E402

from hwprofiles.cli.root import PROG, app  # noqa: E402


def anchor(path: str) -> str:
    return path.replace(" ", "-")


def commands(command: Any, name: str, parent: Any = None) -> list[tuple[Any, Any]]:
    """(command, context) for ``command`` and every visible sub-command, depth first."""
    ctx = command.context_class(command, info_name=name, parent=parent)
    found = [(command, ctx)]
    if hasattr(command, "list_commands"):  # a group (typer vendors its own click: no isinstance)
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not getattr(sub, "hidden", False):
                found += commands(sub, sub_name, ctx)
    return found


def help_text(command: Any) -> str:
    raw = inspect.cleandoc(command.help or command.short_help or "")
    raw = raw.replace("\b\n", "").replace("\b", "")  # click's "do not rewrap" marker
    return prose(raw)


def argument_rows(command: Any, ctx: Any) -> list[list[str]]:
    rows = []
    for param in command.get_params(ctx):
        if param.param_type_name != "argument":
            continue
        record = param.get_help_record(ctx)  # typer's arguments have one (click's do not)
        name, meaning = record if record else (param.metavar or param.name.upper(), "")
        rows.append([code(name), "yes" if param.required else "no", text(meaning)])
    return rows


def option_rows(command: Any, ctx: Any) -> list[list[str]]:
    rows = []
    for param in command.get_params(ctx):
        if param.param_type_name != "option" or getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is not None:
            rows.append([code(record[0]), text(record[1])])
    return rows


def section(command: Any, ctx: Any) -> str:
    path = ctx.command_path
    level = "#" * min(2 + path.count(" "), 4)
    usage = " ".join([path, *command.collect_usage_pieces(ctx)])
    out = [f"{level} `{path}` {{#{anchor(path)}}}\n", help_text(command) + "\n", f"```\n{usage}\n```\n"]
    if hasattr(command, "list_commands"):
        subs = [(n, command.get_command(ctx, n)) for n in command.list_commands(ctx)]
        rows = [[f"[`{n}`](#{anchor(path + ' ' + n)})", text(s.get_short_help_str(limit=120))] for n, s in subs if s]
        out += ["**Commands**\n", table(["command", "what it does"], rows)]
    arguments = argument_rows(command, ctx)
    if arguments:
        out += ["**Arguments**\n", table(["argument", "required", "meaning"], arguments)]
    options = option_rows(command, ctx)
    if options:
        out += ["**Options**\n", table(["option", "meaning"], options)]
    return "\n".join(out)


def main() -> None:
    root = typer.main.get_command(app)
    page = [
        "# Command line\n",
        f"Every `{PROG}` command, generated from the application when the site is built; "
        f"`{PROG} COMMAND --help` prints the same. Errors are printed as one block naming the file, "
        "field or option at fault and how to fix it, with exit status 2 (1 where a check found "
        "invalid profiles or plugins left out).\n",
    ]
    page += [section(command, ctx) for command, ctx in commands(root, PROG)]
    with mkdocs_gen_files.open("reference/cli.md", "w") as handle:
        handle.write("\n".join(page))


main()
