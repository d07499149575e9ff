"""SMAC3 around basset.train: the multi-fidelity facade (random forest, Hyperband with eta 3,
epochs as the budget from 1 to max_epochs), ConfigSpace built from the listed space with its
conditions, the reference in the initial design, two trials at a time through ask/tell. A
configuration promoted to a larger budget continues from its checkpoint (its epochs so far are
not trained again)."""

from __future__ import annotations

import json
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ConfigSpace import (
    Categorical,
    Configuration,
    ConfigurationSpace,
    Float,
    InCondition,
    Integer,
)
from ConfigSpace.hyperparameters import Hyperparameter
from smac import MultiFidelityFacade, Scenario
from smac.intensifier.hyperband import Hyperband
from smac.runhistory.dataclasses import TrialInfo, TrialValue

from basset import BassetError
from peers.common import CONCURRENCY, Record, Task, run_trial, split_values, trial_record


def configspace(listing: dict[str, Any], seed: int) -> ConfigurationSpace:
    """The listed space; categorical choices as their JSON text (a choice may mix 4, "global")."""
    cs = ConfigurationSpace(seed=seed)
    made: dict[str, Hyperparameter] = {}
    for p in listing["parameters"]:
        if p["type"] == "categorical":
            made[p["name"]] = Categorical(p["name"], [json.dumps(c) for c in p["choices"]])
        elif p["type"] == "int":
            made[p["name"]] = Integer(p["name"], (int(p["low"]), int(p["high"])), log=p["log"])
        else:
            made[p["name"]] = Float(p["name"], (p["low"], p["high"]), log=p["log"])
    cs.add(list(made.values()))
    cs.add([InCondition(made[p["name"]], made[parent], allowed)
            for p in listing["parameters"] for parent, allowed in p.get("condition", {}).items()])
    return cs


def decoded(listing: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    kinds = {p["name"]: p["type"] for p in listing["parameters"]}
    return {k: json.loads(v) if kinds[k] == "categorical" else v for k, v in config.items()}


def encoded(listing: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    kinds = {p["name"]: p["type"] for p in listing["parameters"]}
    return {k: json.dumps(v) if kinds[k] == "categorical" else v for k, v in values.items()}


def _unused(config: Configuration, seed: int = 0, budget: float = 1.0) -> float:
    raise AssertionError("ask/tell only")


class _Runner:
    def __init__(self, task: Task) -> None:
        self.task, self.record = task, Record()
        self.names: dict[str, str] = {}
        self.epochs: dict[str, int] = {}

    def __call__(self, info: TrialInfo) -> float:
        values = decoded(self.task.listing, dict(info.config))
        key = json.dumps(values, sort_keys=True)
        name = self.names.setdefault(key, f"s{len(self.names)}")
        epochs = min(max(1, round(info.budget or self.task.max_epochs)), self.task.max_epochs)
        done = self.epochs.get(name, 0)
        restart = self.task.workdir / f"{name}_check.pt" if done else None
        try:
            result = run_trial(self.task, name, values, record=self.record, max_epochs=epochs,
                               restart=restart, rand=self.task.seed * 1000 + int(name[1:]))
        except BassetError:
            return 1.0
        self.epochs[name] = result.epochs_run
        stopped_early = result.epochs_run < self.task.max_epochs
        pruned = stopped_early and result.stop_reason == "max_epochs"  # until promoted
        rc = split_values(self.task.listing, values)[1]
        with self.record.lock:
            self.record.trials = [t for t in self.record.trials if t.trial != name]
        self.record.add_trial(trial_record(name, result, rc, pruned))
        return 1.0 - result.best_metric


def run(task: Task) -> Record:
    cs = configspace(task.listing, task.seed)
    scenario = Scenario(cs, deterministic=True, n_trials=100000, min_budget=1,
                        max_budget=task.max_epochs, seed=task.seed,
                        output_directory=task.workdir / "smac")
    reference = Configuration(cs, values=encoded(task.listing, task.reference()))
    initial = MultiFidelityFacade.get_initial_design(scenario, n_configs=5,
                                                     additional_configs=[reference])
    facade = MultiFidelityFacade(scenario, _unused, initial_design=initial,
                                 intensifier=Hyperband(scenario, eta=3, seed=task.seed),
                                 overwrite=True, logging_level=40)
    runner = _Runner(task)
    running: dict[Future[float], tuple[TrialInfo, float]] = {}
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        while running or time.time() < task.deadline:
            while len(running) < CONCURRENCY and time.time() < task.deadline:
                info = facade.ask()
                running[pool.submit(runner, info)] = (info, time.time())
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                info, started = running.pop(future)
                facade.tell(info, TrialValue(cost=future.result(), time=time.time() - started))
    return runner.record
