"""What the command line prints: tables on stdout; errors, warnings and notes on stderr.

Exit codes follow ``diff`` and ``grep``: :data:`EXIT_INVALID` (1) when a command ran
and found something invalid, :data:`EXIT_ERROR` (2) when it could not do what was
asked. Text taken from files and archives is printed with control characters escaped
(docs/security.md).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from hwprofiles.untrusted import printable

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from hwprofiles.eval.grid import GridStats

EXIT_INVALID = 1
EXIT_ERROR = 2


def _block(kind: str, message: str, empty: str) -> str:
    """``kind: <first line>``, later lines indented under it, every line made printable."""
    lines = [printable(line) for line in message.strip().splitlines()] or [empty]
    return "\n".join([f"{kind}: {lines[0]}", *(f"  {line}" for line in lines[1:])])


def error_block(exc: BaseException | str) -> str:
    """``error: <message>``, later lines of the message indented under the first."""
    return _block("error", str(exc), type(exc).__name__)


def print_error(exc: BaseException | str) -> None:
    """Print :func:`error_block` to stderr, after anything already written to stdout."""
    # Plain writes, not rich: a message may hold [brackets] that rich would read as markup.
    sys.stdout.flush()
    print(error_block(exc), file=sys.stderr)


def print_note(kind: str, message: str) -> None:
    """Print ``kind: <message>`` (a warning, a note) to stderr, later lines indented."""
    print(_block(kind, message, ""), file=sys.stderr)


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (the ``--json`` form of a command's table).

    Strings are written as JSON escapes them, so text from files cannot reach the terminal
    as control characters. A number that is not finite (the accuracy of a failed
    evaluation) is written as ``null``: ``NaN`` is not JSON, and strict readers refuse it."""
    import json

    typer.echo(json.dumps(_finite(value), indent=2, ensure_ascii=True, allow_nan=False))


def _finite(value: Any) -> Any:
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def console() -> Console:
    """A rich console on stdout; piped output is never wrapped or cut."""
    from rich.console import Console

    out = Console()
    if not out.is_terminal:
        # Piped output is read by programs and tests: never wrap or cut a cell.
        out = Console(width=10_000)
    return out


def table(*columns: str) -> Table:
    """A rich table with these column headers."""
    from rich.table import Table

    return Table(*columns, header_style="bold")


def cell(value: Any) -> Text:
    """A table cell: ``-`` for nothing, else the value made printable (never read as markup)."""
    from rich.text import Text

    return Text("-" if value is None or value == "" else printable(str(value)))


def report_failures(stats: GridStats) -> None:
    """Print a grid's time summary and its failed evaluations by name; exit 1 if any failed."""
    typer.echo(stats.summary(), err=True)
    if stats.failures:
        for failure in stats.failures:
            typer.echo(f"failed: {failure.name}: {failure.error}", err=True)
        raise typer.Exit(EXIT_INVALID)
