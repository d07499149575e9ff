"""What a study looks like right now (counts, best, running trials), as data and as a rich table.

Shared by the live display of `basset-hpo run` and by `basset-hpo status`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import cast

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Group
from rich.table import Table
from rich.text import Text

from hpo import trialprogress

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
WARM_START = "warm_start"  # user attr of a trial copied from another study (hpo.warmstart)
REFERENCE = "reference"  # user attr of an enqueued reference trial: its label (hpo.study)


def copied(trial: FrozenTrial) -> bool:
    """A trial of another study given to this one's sampler (`run --warm-start`): history,
    never trained here, so it neither uses up --n-trials nor is this study's best."""
    return WARM_START in trial.user_attrs


def is_reference(trial: FrozenTrial) -> bool:
    """One of the study's enqueued references (or a retried copy of one), by its label."""
    return bool(trial.user_attrs.get(REFERENCE))


def requeued(trials: list[FrozenTrial]) -> set[int]:
    """Failed trials that a retry replaced (a crashed or interrupted trial: its WAITING/RUNNING
    copy counts instead). A copy's `retry_history` lists every trial of its chain, as a chain
    may be retried more than once."""
    retried = {number for t in trials for number in t.system_attrs.get("retry_history", ())}
    return {t.number for t in trials if t.state == TrialState.FAIL and t.number in retried}


def counted(trials: list[FrozenTrial]) -> int:
    """Trials that use up `--n-trials`: all started ones, except requeued ones."""
    replaced = requeued(trials)
    return sum(t.state != TrialState.WAITING and t.number not in replaced and not copied(t)
               for t in trials)


@dataclass
class Snapshot:
    study_name: str
    counts: dict[str, int]
    counted: int
    best: FrozenTrial | None
    running: list[FrozenTrial]
    references: list[FrozenTrial]  # the enqueued reference trials (user attr REFERENCE)
    requeued: int = 0  # FAIL trials that a retry replaced (not in counts["FAIL"])

    @property
    def finished(self) -> int:
        return self.counts["COMPLETE"] + self.counts["PRUNED"] + self.counts["FAIL"]


def snapshot(storage: optuna.storages.BaseStorage, study_name: str) -> Snapshot:
    """Read the study's trials once (fresh from the storage)."""
    study_id = storage.get_study_id_from_name(study_name)
    trials = [t for t in storage.get_all_trials(study_id, deepcopy=False) if not copied(t)]
    replaced = requeued(trials)
    by_state = Counter(t.state.name for t in trials if t.number not in replaced)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return Snapshot(
        study_name=study_name,
        counts={state: by_state.get(state, 0) for state in STATES},
        counted=counted(trials),
        best=max(complete, key=lambda t: cast(float, t.value), default=None),
        running=[t for t in trials if t.state == TrialState.RUNNING],
        references=[t for t in trials if is_reference(t)],
        requeued=len(replaced),
    )


def epoch_of(trial: FrozenTrial) -> int:
    """Last evaluation the trial reported (0 while its first one runs): its epoch, or with the
    study's eval_every its interval."""
    return max(trial.intermediate_values, default=0)


def by_worker(snap: Snapshot) -> list[FrozenTrial]:
    return sorted(snap.running, key=lambda t: str(t.user_attrs.get("worker", "")))


def trial_lines(snap: Snapshot, max_epochs: int | None = None,
                now: float | None = None) -> list[str]:
    """One log line per running trial (trialprogress.trial_line)."""
    now = time.time() if now is None else now
    return [trialprogress.trial_line(t, epoch_of(t), t.intermediate_values.get(epoch_of(t)), now,
                                     max_epochs) for t in by_worker(snap)]


def headline(snap: Snapshot, n_trials: int | None = None) -> str:
    c = snap.counts
    total = f"/{n_trials}" if n_trials else ""
    best = f"best {snap.best.value:.4f} (trial {snap.best.number})" if snap.best else "best -"
    requeued = f", {snap.requeued} requeued" if snap.requeued else ""
    waiting = f", {c['WAITING']} waiting" if c["WAITING"] else ""
    return (
        f"{snap.study_name}: {snap.finished}{total} done ({c['COMPLETE']} complete, "
        f"{c['PRUNED']} pruned, {c['FAIL']} failed{requeued}), {c['RUNNING']} running{waiting}, "
        f"{best}"
    )


def running_table(snap: Snapshot, max_epochs: int | None = None,
                  now: float | None = None) -> Table:
    """One row per running trial: worker, device, trial, evaluations (epochs, or eval_every
    intervals), last valid AUROC, and inside the epoch: sequences done, seq/s, the time to the
    next evaluation (as its worker last stored them; `now`: time.time())."""
    now = time.time() if now is None else now
    table = Table(box=None, pad_edge=False)
    for column in ("worker", "device", "trial", "evaluation", "valid AUROC", "sequences",
                   "seq/s", "next evaluation"):
        table.add_column(column)
    for trial in by_worker(snap):
        epoch = epoch_of(trial)
        last = trial.intermediate_values.get(epoch)
        table.add_row(
            str(trial.user_attrs.get("worker", "?")),
            str(trial.user_attrs.get("device", "?")),
            str(trial.number),
            f"{epoch}/{max_epochs}" if max_epochs else str(epoch),
            f"{last:.4f}" if last is not None else "-",
            *trialprogress.cells(trial, now),
        )
    return table


def render(snap: Snapshot, n_trials: int | None = None, max_epochs: int | None = None) -> Group:
    """The live display: the headline over the running trials."""
    text = Text(headline(snap, n_trials))
    return Group(text, running_table(snap, max_epochs)) if snap.running else Group(text)
