"""The study's pruner.

`asha` (the packaged studies' choice): asynchronous successive halving judged on promise. Rungs
sit at min_resource * reduction_factor**k steps (1, 3, 9, ... evaluations), below max_epochs.
At every report a trial is judged at the highest rung it has reached: its best value up to
that rung against the best values up to the same rung of the other trials that reached it
(running, complete or pruned; failed ones and copies from another study are left out). It goes
on while it is at or above their 1 - 1/reduction_factor quantile (numpy's linear one), the
cut-off Ray Tune's ASHA uses; a curve that keeps rising but stays below it is pruned.

An enqueued reference is judged from the second rung on (with a single rung, never): it is a
shape chosen for being good, and one epoch of it says little (the small-data reference starts
below random draws on peak sets and ends above them; docs/benchmarks.md). Its values still
count as every other trial's peers at every rung.

Decisions in bounded time: a trial with no peer at its rung goes on, but it is judged again at
each later report against whoever has reached that rung by then, so the first trials of a
study (the reference among them) are stopped as soon as better trials pass them, not only at
their next rung. Hyperband and the median pruner stay available (`keep_rising` can spare a
rising trial there).
"""

from __future__ import annotations

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.config import StudyConfig
from hpo.progress import copied, is_reference


def rungs(min_resource: int, reduction_factor: int, max_resource: int) -> list[int]:
    """The steps at which trials are compared: min_resource * reduction_factor**k < max."""
    steps = []
    step = min_resource
    while step < max_resource:
        steps.append(step)
        step *= reduction_factor
    return steps


def best_until(trial: FrozenTrial, step: int) -> float:
    """The trial's best reported value at steps <= `step`."""
    return max(v for s, v in trial.intermediate_values.items() if s <= step)


def promising(value: float, peers: list[float], reduction_factor: int) -> bool:
    """At or above the peers' 1 - 1/reduction_factor quantile (True when there are none)."""
    if not peers:
        return True
    return value >= float(np.quantile(peers, 1.0 - 1.0 / reduction_factor))


class RungPruner(optuna.pruners.BasePruner):
    """ASHA on the best value up to each rung, re-judged at every report (module docstring)."""

    def __init__(self, min_resource: int, reduction_factor: int, max_resource: int) -> None:
        self.rungs = rungs(min_resource, reduction_factor, max_resource)
        self.reduction_factor = reduction_factor

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        reached = [r for r in self.rungs if step is not None and r <= step]
        if is_reference(trial):
            reached = reached[1:]
        if not reached:
            return False
        rung = reached[-1]
        peers = [
            best_until(t, rung)
            for t in study.get_trials(deepcopy=False)
            if t.number != trial.number and t.state != TrialState.FAIL
            and not copied(t) and (t.last_step or 0) >= rung
        ]
        return not promising(best_until(trial, rung), peers, self.reduction_factor)


class KeepRising(optuna.pruners.BasePruner):
    """`inner`'s verdict, except for a trial whose value rose by at least `gain` over its last
    epoch: that one goes on (a hyperband rung then judges it at the next rung)."""

    def __init__(self, inner: optuna.pruners.BasePruner, gain: float) -> None:
        self.inner = inner
        self.gain = gain

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if not self.inner.prune(study, trial):
            return False
        values = trial.intermediate_values
        step = trial.last_step
        if step is None or step - 1 not in values:
            return True
        return values[step] - values[step - 1] < self.gain


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    p = config.pruner
    pruner: optuna.pruners.BasePruner
    if p.type == "asha":
        return RungPruner(p.min_resource, p.reduction_factor, config.max_epochs)
    if p.type == "hyperband":
        pruner = optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource,
            max_resource=config.max_epochs,
            reduction_factor=p.reduction_factor,
            bootstrap_count=p.bootstrap_count,
        )
    elif p.type == "median":
        pruner = optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials,
            n_warmup_steps=p.n_warmup_steps,
            interval_steps=1,
            n_min_trials=p.n_min_trials,
        )
    else:
        return optuna.pruners.NopPruner()
    return KeepRising(pruner, p.keep_rising) if p.keep_rising > 0 else pruner
