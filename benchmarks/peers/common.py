"""What every engine shares: the study's space (read from `basset-hpo space --json`), one trial
of basset.train on a flat configuration, the deadline, and the record of every epoch.

Only basset's public API (`from basset import ...`): tests/test_peers_seam.py keeps it so.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from basset import (
    EpochMetrics,
    StopTraining,
    TrainHooks,
    TrainOptions,
    TrainResult,
    load_data,
    params_from_flat,
    train,
)

CONCURRENCY = 2  # trials at a time, for every engine
TRAINING = ("rc", "freeze_conv", "max_epochs")  # flat keys that are TrainOptions, not params


@dataclass
class Task:
    """One engine run: the data, the space, the wall budget from `start`, a folder, a seed."""

    data: Path
    listing: dict[str, Any]
    budget_s: float
    seed: int
    workdir: Path
    start: float = field(default_factory=time.time)

    @property
    def deadline(self) -> float:
        return self.start + self.budget_s

    @property
    def max_epochs(self) -> int:
        return int(self.listing["max_epochs"])

    @property
    def stagnant_t(self) -> int:
        return int(self.listing["stagnant_t"])

    def reference(self) -> dict[str, Any]:
        """The study's first reference as flat values of the searched parameters."""
        return dict(self.listing["references"][0]["values"])


@dataclass
class Epoch:
    """One epoch of one trial, as every engine's curve and busy share are computed from."""

    trial: str
    epoch: int
    t: float  # seconds since the engine started
    valid: float
    seconds: float  # the epoch's training + validation time


@dataclass
class TrialRecord:
    trial: str
    state: str  # "complete", "pruned" (by the engine), "timeout"
    best: float
    best_path: str | None
    rc: bool
    epochs: int


@dataclass
class Record:
    """Everything an engine run produced (thread-safe appends)."""

    epochs: list[Epoch] = field(default_factory=list)
    trials: list[TrialRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_epoch(self, e: Epoch) -> None:
        with self.lock:
            self.epochs.append(e)

    def add_trial(self, t: TrialRecord) -> None:
        with self.lock:
            self.trials.append(t)


def read_listing(study_file: Path) -> dict[str, Any]:
    """`basset-hpo space --study FILE --json`: the space the service searches."""
    out = subprocess.run(["basset-hpo", "space", "--study", str(study_file), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def split_values(listing: dict[str, Any], values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(flat params-table values with the fixed keys, rc) of one sampled configuration."""
    flat = {**listing["fixed"], **values}
    return {k: v for k, v in flat.items() if k not in TRAINING}, bool(flat.get("rc", False))


class DataCache:
    """One load of the data per process (threads share it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded: dict[Path, Any] = {}

    def get(self, path: Path) -> Any:
        with self.lock:
            if path not in self.loaded:
                self.loaded[path] = load_data(path)
            return self.loaded[path]


DATA = DataCache()

# (metrics) -> None; may raise StopTraining (an engine's pruner)
EpochCallback = Callable[[EpochMetrics], None]


def run_trial(task: Task, name: str, values: dict[str, Any], *, record: Record | None,
              max_epochs: int | None = None, restart: Path | None = None,
              on_epoch: EpochCallback | None = None, rand: int = 1) -> TrainResult:
    """Train one configuration with basset.train until its stop rules, the engine's callback or
    the deadline (the end of the epoch running then, as the service's --timeout) end it.
    Checkpoints go to workdir/name_{check,best}.pt (a restart continues from the check one)."""
    data = DATA.get(task.data)
    flat, rc = split_values(task.listing, values)
    params = params_from_flat(flat, padding=task.listing["padding"], seq_len=data.seq_len)
    params.validate()
    options = TrainOptions(max_epochs=max_epochs or task.max_epochs, stagnant_t=task.stagnant_t,
                           rand=rand, rc=rc, quiet=True, save_prefix=task.workdir / name,
                           restart=restart)

    def hook(m: EpochMetrics) -> None:
        if record is not None:
            record.add_epoch(Epoch(name, m.epoch, time.time() - task.start, m.valid_metric,
                                   m.seconds))
        if on_epoch is not None:
            on_epoch(m)
        if m.stop_reason is None and time.time() > task.deadline:
            raise StopTraining("timeout")

    return train(params, data, options=options, hooks=TrainHooks(on_epoch_end=hook))


def trial_record(name: str, result: TrainResult, rc: bool, pruned: bool = False) -> TrialRecord:
    state = "pruned" if pruned else ("timeout" if result.stop_reason == "timeout" else "complete")
    return TrialRecord(name, state, result.best_metric,
                       str(result.best_path) if result.best_path else None, rc,
                       result.epochs_run)
