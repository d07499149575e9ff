"""A worker's lifeline to its `basset-hpo run` process: when the run dies, however it dies
(SIGKILL, the OOM killer), the worker stops as on SIGTERM (epoch finished, trial requeued)
instead of training on with nobody watching. Light on purpose (no torch): tests start it in
plain subprocesses."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h
POLL_SECONDS = 1.0


def end_with_parent(parent: int, stopping: Callable[[], bool]) -> None:
    """SIGTERM this process (a graceful stop: epoch finished, trial requeued) when process
    `parent` dies, however it dies: the kernel's parent-death signal on Linux, and everywhere a
    thread that watches the parent pid (once a stop is under way it sends nothing: a second
    SIGTERM would abandon the epoch)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        if not stopping():
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
