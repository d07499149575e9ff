"""Progress bars for the loops a person waits for (rich, on stderr: stdout keeps results)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import Progress


def progress_bars(quiet: bool) -> Progress:
    """Transient progress bars on stderr (stdout keeps only results)."""
    # Off when stderr is not a terminal: a finished transient display still leaves a blank line.
    return Progress(disable=quiet or not sys.stderr.isatty(), transient=True,
                    console=Console(stderr=True))
