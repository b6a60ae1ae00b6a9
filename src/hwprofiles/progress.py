"""Progress bars (rich): one look for every long loop, and the chip-instance bar of evaluation grids.

Bars draw on stderr and can be switched off (``--quiet``); nothing here changes what
is computed.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from rich.progress import Progress


def progress_bar(*, enabled: bool = True, status_field: str = "state") -> Progress:
    """A bar with a bold description, done / total, the time left, and a status text
    read from each task's field ``status_field``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn(f"{{task.fields[{status_field}]}}"),
        disable=not enabled,
        console=Console(stderr=True),  # stdout is for results (--json)
    )


class ChipProgress:
    """A bar over chip instances, with the done / running / failed evaluations as its status.

    Use it as a context manager and hand :meth:`advance` and :meth:`counts` to
    :func:`hwprofiles.eval.grid.run_requests` as ``on_sample`` and ``on_progress``.

    Args:
        title: the bar's description.
        total: chip instances in all (None when not known in advance).
        enabled: False draws nothing.
    """

    def __init__(self, title: str, total: int | None, *, enabled: bool = True) -> None:
        self.bar = progress_bar(enabled=enabled)
        self.task = self.bar.add_task(title, total=total, state="")

    def __enter__(self) -> ChipProgress:
        self.bar.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.bar.__exit__(kind, error, traceback)

    def advance(self) -> None:
        """One more chip instance measured or read."""
        self.bar.advance(self.task)

    def counts(self, done: int, running: int, failed: int) -> None:
        """Show how many evaluations are done, running and failed."""
        self.bar.update(self.task, state=f"done {done} running {running} failed {failed}")
