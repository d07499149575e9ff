"""Ray Tune around basset.train: ASHA (grace period 2 epochs, reduction factor 3) with either
OptunaSearch (TPE, define-by-run over the listed space, conditions as `if`s) or random search
(every listed parameter sampled; params_from_flat ignores layers the counts leave out), the
reference first (points_to_evaluate), two one-CPU trials at a time, the wall budget counted from
before ray.init."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from basset import BassetError, EpochMetrics
from peers.common import CONCURRENCY, Epoch, Record, Task, TrialRecord, run_trial, split_values
from peers.optuna_script import suggest

METRIC = "valid_auroc"


def trainable(config: dict[str, Any], task: Task) -> None:
    torch.set_num_threads(1)
    name = f"r{tune.get_context().get_trial_id()}"
    rc = split_values(task.listing, config)[1]

    def report(m: EpochMetrics) -> None:
        tune.report({METRIC: m.valid_metric, "t": time.time() - task.start,
                     "seconds": m.seconds, "epoch": m.epoch, "stop": m.stop_reason or "",
                     "best": str(task.workdir / f"{name}_best.pt"), "name": name, "rc": rc})

    try:
        run_trial(task, name, config, record=None, on_epoch=report, rand=task.seed)
    except BassetError:
        tune.report({METRIC: 0.5, "t": time.time() - task.start, "seconds": 0.0, "epoch": 1,
                     "stop": "invalid", "best": "", "name": name, "rc": rc})


def define_by_run(trial: Any, listing: dict[str, Any]) -> None:
    """OptunaSearch's space: the listed parameters whose conditions hold (picklable)."""
    suggest(trial, listing)


def random_space(listing: dict[str, Any]) -> dict[str, Any]:
    space: dict[str, Any] = {}
    for p in listing["parameters"]:
        if p["type"] == "categorical":
            space[p["name"]] = tune.choice(p["choices"])
        elif p["type"] == "int":
            sample = tune.lograndint if p["log"] else tune.randint
            space[p["name"]] = sample(int(p["low"]), int(p["high"]) + 1)
        else:
            sample = tune.loguniform if p["log"] else tune.uniform
            space[p["name"]] = sample(p["low"], p["high"])
    return space


def run(task: Task, *, tpe: bool) -> Record:
    here = str(Path(__file__).resolve().parents[1])
    os.environ["PYTHONPATH"] = os.pathsep.join([here, *sys.path[1:]])
    ray.init(num_cpus=CONCURRENCY, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, configure_logging=False)
    try:
        searcher = (OptunaSearch(space=functools.partial(define_by_run, listing=task.listing),
                                 metric=METRIC, mode="max", points_to_evaluate=[task.reference()],
                                 seed=task.seed)
                    if tpe else BasicVariantGenerator(points_to_evaluate=[task.reference()],
                                                      random_state=task.seed))
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, task=task), {"cpu": 1}),
            param_space={} if tpe else random_space(task.listing),
            tune_config=tune.TuneConfig(
                metric=METRIC, mode="max", search_alg=searcher, num_samples=-1,
                scheduler=ASHAScheduler(time_attr="training_iteration", max_t=task.max_epochs,
                                        grace_period=2, reduction_factor=3),
                max_concurrent_trials=CONCURRENCY,
                time_budget_s=max(task.deadline - time.time(), 1.0)),
            run_config=tune.RunConfig(storage_path=str(task.workdir / "ray"), name="tune",
                                      verbose=0),
        )
        results = tuner.fit()
        frames = [frame for frame in (results[i].metrics_dataframe for i in range(len(results)))
                  if frame is not None]
    finally:
        ray.shutdown()
    return _record(task, frames, tpe)


def _record(task: Task, frames: list[pd.DataFrame], tpe: bool) -> Record:
    record = Record()
    for frame in frames:
        if frame.empty or METRIC not in frame:
            continue
        rows = frame.to_dict("records")
        name = str(rows[0]["name"])
        for r in rows:
            record.epochs.append(Epoch(name, int(r["epoch"]), float(r["t"]), float(r[METRIC]),
                                       float(r["seconds"])))
        last = rows[-1]
        state = ("complete" if last["stop"] else
                 "timeout" if last["t"] >= task.budget_s else "pruned")
        best = max(rows, key=lambda r: r[METRIC])
        record.trials.append(TrialRecord(name, state, float(best[METRIC]), str(last["best"]),
                                         bool(last["rc"]), int(last["epoch"])))
    return record
