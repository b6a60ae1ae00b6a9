"""The root ``hwprofiles`` command: global options, error handling, and every sub-command.

The commands live in modules of their own (profiles, plugins, models, train, evaluate,
sweep, transfer, study, demo, results); this module imports them, never the other way round.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

import hwprofiles
from hwprofiles.cli import demo, evaluate, models, plugins, profiles, results, study, sweep, train, transfer
from hwprofiles.cli.output import EXIT_ERROR, EXIT_INVALID, print_error, print_note
from hwprofiles.errors import FloatLayerWarning, HwProfilesError, PluginWarning

PROG = "hwprofiles"


def plain_flags(command: Any) -> None:
    """Show a flag (``--quiet``, ``--help``) in help as a flag, with no ``<bool>`` value after
    it, in ``command`` and every command below it."""
    from typer import Context

    params = list(command.params)
    help_option = command.get_help_option(Context(command))  # made on first use; flag it too
    for param in [*params, *([help_option] if help_option is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        plain_flags(sub)


class _Group(TyperGroup):
    """The root group: turns a :class:`HwProfilesError` from any command into an error block."""

    _flags_plain = False

    def get_params(self, ctx: Any) -> Any:
        # The first call comes after typer has added its completion options, before any help is shown.
        if not self._flags_plain:
            self._flags_plain = True
            plain_flags(self)
        return super().get_params(ctx)

    def invoke(self, ctx: Any) -> Any:
        with warnings.catch_warnings():
            # A plugin left out, or a layer left float, is one `warning:` line.
            warnings.simplefilter("always", PluginWarning)
            show = warnings.showwarning

            def _show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
                if issubclass(category, (PluginWarning, FloatLayerWarning)):
                    print_note("warning", str(message))
                else:
                    show(message, category, *args, **kwargs)

            warnings.showwarning = _show
            try:
                return super().invoke(ctx)
            except HwProfilesError as exc:
                print_error(exc)
                raise typer.Exit(EXIT_ERROR) from None


app = typer.Typer(
    name=PROG,
    cls=_Group,
    help="Hardware profiles and noise models for analog AI accelerators.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
# Commands show in this order: the single ones, then the groups.
for commands in (plugins.app, models.app, train.app, evaluate.app, sweep.app, transfer.app, study.app, demo.app):
    app.add_typer(commands)
app.add_typer(profiles.app, name="profiles")
app.add_typer(results.app, name="results")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {hwprofiles.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    profiles_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--profiles-dir",
            help="Also search this directory (or file) for profiles. Repeatable.",
            exists=True,
            metavar="DIR",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_version_callback, is_eager=True),
    ] = False,
) -> None:
    """Hardware profiles and noise models for analog AI accelerators."""
    if profiles_dir:
        hwprofiles.add_profile_dirs(*profiles_dir)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return its exit code.

    Args:
        argv: the arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns:
        0 on success, 1 when profiles were found invalid, 2 on any other error.

    >>> main(["--version"])  # doctest: +SKIP
    hwprofiles <version>
    0
    """
    code = _run(argv)
    if "torch.distributed" in sys.modules:  # (torch imports it; a command without torch does not)
        from hwprofiles.train import distributed as ddp

        if ddp.in_group():  # a rank under torchrun: see exit_rank for why it ends this way
            ddp.exit_rank(code)
    return code


def _run(argv: list[str] | None) -> int:
    try:
        app(args=argv, prog_name=PROG)
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return EXIT_INVALID
    except HwProfilesError as exc:  # raised outside a command, e.g. while parsing
        print_error(exc)
        return EXIT_ERROR
    return 0
