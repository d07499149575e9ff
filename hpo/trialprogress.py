"""Progress inside an epoch: a running trial's worker stores where its training stands (user attr
`progress`, every REPORT_EVERY_S at most) and the run's display and log lines show it: the
sequences done in the epoch, sequences per second and the time to the next evaluation.

Both sides take their clock as an argument, so the numbers can be tested without waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from basset import TrainProgress

REPORT_EVERY_S = 10.0
ATTR = "progress"


class ProgressReporter:
    """The worker's side: TrainHooks.on_progress for one trial, throttled to one storage write
    every `every` seconds. The rate is measured since the last report or evaluation (a window
    never holds a validation pass)."""

    def __init__(self, trial: optuna.Trial, *, every: float = REPORT_EVERY_S,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.trial, self.every, self.clock, self.wall = trial, every, clock, wall
        self.since = clock()
        self.since_sequences: int | None = None  # None: the window starts at the first step
        self.last_write = self.since

    def evaluated(self, sequences: int) -> None:
        """An evaluation ended: the next rate is measured from here."""
        self.since, self.since_sequences = self.clock(), sequences

    def __call__(self, p: TrainProgress) -> None:
        now = self.clock()
        if self.since_sequences is None:
            self.since, self.since_sequences = now, p.sequences
            return
        if now - self.last_write < self.every or now <= self.since:
            return
        rate = (p.sequences - self.since_sequences) / (now - self.since)
        self.trial.set_user_attr(ATTR, {
            "epoch": p.epoch, "epoch_done": p.epoch_done, "epoch_size": p.epoch_size,
            "seqs_per_sec": rate,
            "next_eval_s": p.to_next_eval / rate if rate > 0 else None,
            "at": self.wall(),
        })
        self.last_write = now
        self.since, self.since_sequences = now, p.sequences


def duration(seconds: float | None) -> str:
    """45 s, 12 min, 3.4 h; "-" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cells(trial: FrozenTrial, now: float) -> tuple[str, str, str]:
    """(sequences done in the epoch, seq/s, time to the next evaluation) of a running trial as
    its worker last stored them, the time counted down to `now` (time.time())."""
    stored: Any = trial.user_attrs.get(ATTR)
    if not isinstance(stored, dict):
        return "-", "-", "-"
    done = f"epoch {stored['epoch']}: {stored['epoch_done']:,}/{stored['epoch_size']:,}"
    left = stored.get("next_eval_s")
    if left is not None:
        left = max(0.0, left - max(0.0, now - stored["at"]))
    return done, f"{stored['seqs_per_sec']:,.0f}", duration(left)


def trial_line(trial: FrozenTrial, step: int, last: float | None, now: float,
               max_steps: int | None = None) -> str:
    """A running trial as one log line (the display's row, for a log file)."""
    done, rate, left = cells(trial, now)
    evals = f"{step}/{max_steps}" if max_steps else str(step)
    value = f"{last:.4f}" if last is not None else "-"
    return (f"  trial {trial.number} ({trial.user_attrs.get('worker', '?')}, "
            f"{trial.user_attrs.get('device', '?')}): evaluation {evals}, valid AUROC {value}; "
            f"{done} sequences, {rate} seq/s, next evaluation in {left}")
