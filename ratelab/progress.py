"""Progress bars for long work, shown only to a person watching a terminal.

``progress`` draws a :mod:`rich.progress` bar on stderr when stderr is a terminal and does
nothing at all otherwise, so cron jobs, papermill runs, CI logs and pipes stay clean::

    with progress("Rating", total=n, unit="CDRs") as update:
        for done in ...:
            update(done)            # or update(done, total) when the total is learnt late

The callback takes the *absolute* amount done (not an increment), which matches the callbacks
of the warehouse (``Warehouse.rate(on_chunk=...)`` reports ``(done, total)``).

>>> with progress("Rating", total=3, unit="CDRs") as update:   # stderr is no terminal here
...     for done in range(1, 4):
...         update(done)
>>> interactive()
False
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Update", "interactive", "progress"]

#: ``update(done, total=None)``: report the amount done so far (and optionally a new total).
Update = Callable[..., None]


def interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is a terminal a person is looking at.

    >>> import io
    >>> interactive(io.StringIO())
    False
    """
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


@contextmanager
def progress(
    description: str,
    total: float | None = None,
    *,
    unit: str = "",
    enabled: bool | None = None,
    transient: bool = False,
) -> Iterator[Update]:
    """A progress bar for ``with``; yields ``update(done, total=None)``.

    ``enabled=None`` (the default) shows the bar only when stderr is a terminal; ``True`` or
    ``False`` force it. When disabled, ``update`` does nothing and nothing is printed.

    >>> with progress("Ingesting", unit="files", enabled=False) as update:
    ...     update(2, 5)
    """
    if enabled is None:
        enabled = interactive()
    if not enabled:
        yield _ignore
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),  # shows "?" for a total not known yet
        TextColumn(unit),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=transient,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def update(done: float, new_total: float | None = None) -> None:
            if new_total is not None:
                bar.update(task, total=new_total)
            bar.update(task, completed=done)

        yield update


def _ignore(done: float, new_total: float | None = None) -> None:
    """The ``update`` of a disabled progress bar."""
