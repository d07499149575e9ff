"""The script a user writes with Optuna around basset.train: a define-by-run objective over the
listed space (conditions as Python `if`s), the reference enqueued first, two trials at a time
(`n_jobs=2`: threads, each run with its own random state), TPE + HyperbandPruner(min_resource=2)
or, for plain random search, RandomSampler without pruning."""

from __future__ import annotations

import time
from typing import Any

import optuna

from basset import BassetError, EpochMetrics, StopTraining
from peers.common import CONCURRENCY, Record, Task, run_trial, split_values, trial_record


def suggest(trial: optuna.Trial, listing: dict[str, Any]) -> dict[str, Any]:
    """One configuration, asking only for the parameters whose condition holds."""
    values: dict[str, Any] = {}
    for p in listing["parameters"]:
        condition = p.get("condition", {})
        if any(values.get(parent) not in allowed for parent, allowed in condition.items()):
            continue
        name = p["name"]
        if p["type"] == "categorical":
            values[name] = trial.suggest_categorical(name, p["choices"])
        elif p["type"] == "int":
            values[name] = trial.suggest_int(name, int(p["low"]), int(p["high"]), log=p["log"])
        else:
            values[name] = trial.suggest_float(name, p["low"], p["high"], log=p["log"])
    return values


def run(task: Task, *, tpe: bool) -> Record:
    record = Record()
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.TPESampler(seed=task.seed, multivariate=True, constant_liar=True)
        if tpe else optuna.samplers.RandomSampler(seed=task.seed))
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.HyperbandPruner(min_resource=2, max_resource=task.max_epochs,
                                       reduction_factor=3)
        if tpe else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    study.enqueue_trial(task.reference())

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, task.listing)
        name = f"t{trial.number}"

        def report(m: EpochMetrics) -> None:
            trial.report(m.valid_metric, m.epoch)
            if m.stop_reason is None and trial.should_prune():
                raise StopTraining("pruned")

        try:
            result = run_trial(task, name, values, record=record, on_epoch=report,
                               rand=task.seed * 1000 + trial.number)
        except BassetError:
            raise optuna.TrialPruned() from None  # an architecture the data cannot take
        pruned = result.stop_reason == "pruned"
        record.add_trial(trial_record(name, result, split_values(task.listing, values)[1],
                                      pruned))
        if pruned:
            raise optuna.TrialPruned()
        return result.best_metric

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_jobs=CONCURRENCY,
                   timeout=max(task.deadline - time.time(), 1.0))
    return record
