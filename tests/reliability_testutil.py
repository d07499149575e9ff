"""Helpers of the reliability tests: a study file with heartbeats, a real trainer slowed down
between epochs (so a test can strike mid-trial), and polling of the study database.

Importable by spawned worker processes (the paced trainer is pickled into RunPlan).
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import optuna
import pytest
import sqlalchemy
from optuna.trial import FrozenTrial, TrialState

from basset.cli import train as basset_cli
from basset.cli.demo_data import main as demo_main
from basset.cli.features import main as features_main
from basset.cli.motifs import main as motifs_main
from basset.cli.preprocess import main as preprocess_main
from basset.cli.sat import main as sat_main
from basset.data.h5read import BassetData
from basset.params import JobParams
from basset.training.resident import ResidentData
from basset.training.seam import EpochMetrics, TrainHooks, TrainOptions, TrainResult
from basset.training.trainer import train

PACE_S = 0.6  # pause after each epoch of paced_train
T = TypeVar("T")

FIXED_NET = """
[space]
learning_rate = { low = 3e-3, high = 3e-2, log = true }

[fixed]
num_conv = 1
conv_filters = 8
conv_filter_sizes = 5
pool_width = 2
num_hidden = 1
hidden_units = 16
batch_size = 32
"""


def study_file(folder: Path, name: str, data: Path, *, max_epochs: int, interval: int = 0,
               grace: int = 0, storage: str | None = None, space: str = FIXED_NET) -> Path:
    """A study that never stops a trial early (no pruner, stagnant_t = max_epochs), with
    heartbeats every `interval` s (0: off)."""
    lines = [f'name = "{name}"', f'data = "{data}"', f"max_epochs = {max_epochs}",
             f"stagnant_t = {max_epochs}", "seed = 1"]
    if storage:
        lines.append(f'storage = "{storage}"')
    lines += ['[sampler]', 'type = "random"', '[pruner]', 'type = "none"', '[heartbeat]',
              f"interval = {interval}"]
    if interval:
        lines += [f"grace_period = {grace}", "max_retry = 2"]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n" + space)
    return path


def paced_train(params: JobParams, data: BassetData, *, options: TrainOptions,
                hooks: TrainHooks, resident: ResidentData | None = None) -> TrainResult:
    """basset.training.trainer.train (real checkpoints, real restart) with a pause after every
    epoch."""
    assert hooks.on_epoch_end is not None
    report = hooks.on_epoch_end

    def on_epoch_end(m: EpochMetrics) -> None:
        report(m)
        time.sleep(PACE_S)

    return train(params, data, options=options, hooks=TrainHooks(on_epoch_end), resident=resident)


def wait_for(probe: Callable[[], T | None], timeout: float = 60.0, what: str = "",
             every: float = 0.1) -> T:
    """Poll (every `every` s) until probe() returns something truthy."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = probe()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what or probe}")


def running_after_epoch(url: str, name: str, epoch: int) -> Callable[[], FrozenTrial | None]:
    """A probe: a RUNNING trial that has reported `epoch` (its checkpoint is on disk)."""

    def probe() -> FrozenTrial | None:
        engine = sqlalchemy.create_engine(url)
        try:  # our epoch table is created last: before it, opening the study would race
            ready = sqlalchemy.inspect(engine).has_table("basset_epochs")
        except sqlalchemy.exc.OperationalError:  # not even the folder yet
            ready = False
        finally:
            engine.dispose()
        if not ready:
            return None
        try:
            trials = optuna.load_study(study_name=name, storage=url).get_trials(
                deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:  # the study is created a moment later
            return None
        return next((t for t in trials if epoch in t.intermediate_values
                     and "pid" in t.user_attrs), None)

    return probe


def fill_file_system(filler: Path) -> Path:
    """Write zeros to `filler` until its file system has no byte left; return `filler`."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def snapshot(ws: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under `ws`: inode, mode, and its bytes' digest (a link: where it points)."""
    found = {}
    for path in sorted(ws.rglob("*")):
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            content = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = ""
        found[str(path.relative_to(ws))] = (info.st_ino, info.st_mode, content)
    return found


BASSET_SCRIPTS: dict[str, Callable[[list[str]], int]] = {
    "basset-preprocess": preprocess_main, "basset-features": features_main,
    "basset-demo-data": demo_main, "basset-train": basset_cli.train_main,
    "basset-test": basset_cli.test_main, "basset-predict": basset_cli.predict_main,
    "basset-motifs": motifs_main, "basset-sat": sat_main,
}


def run_in(ws: Path, script: str, args: list[str], capsys: pytest.CaptureFixture[str],
           monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """A basset-* script's exit code and stderr, run in the folder `ws`."""
    monkeypatch.chdir(ws)
    try:
        code = BASSET_SCRIPTS[script](args)
    except SystemExit as stop:  # argparse
        code = stop.code  # type: ignore[assignment]
    return int(code), capsys.readouterr().err
