"""What the benchmarks time with besides the wall clock."""

from __future__ import annotations

import resource


def cpu_seconds() -> float:
    """This process and its finished children (workers it forked or spawned), user + system."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
