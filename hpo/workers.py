"""A worker process: pull trials from the study and train them until the study-wide total.

Trial budget: `n_trials` is the study's total across all workers and hosts. A worker takes the
study lock (hpo.storage.StudyLock), counts the trials already started, and only if that is
below the total lets Optuna create (or pop an enqueued) trial; the objective releases the lock
as its first act, once the trial exists as RUNNING. Counting and creating are thus one critical
section, so the total is met exactly with no overshoot; the lock is held for milliseconds, not
for the training.

Crashes: with heartbeats on, a worker that finds the total reached stays while other trials
run, failing stale ones (their worker died) under the same lock; Optuna's retry callback then
enqueues a WAITING copy, the count drops by one, and the worker runs the copy, which resumes
from the dead trial's checkpoint (hpo.objective).

Heartbeats off (`interval = 0`): a worker records its host and pid on its trial; before
counting, a worker (or `run` itself) fails and retries the RUNNING trials of its own host whose
process is gone. Trials of a dead process on another host stay RUNNING until a run on that host
(or heartbeats, which work across hosts). Either way, a RUNNING trial with no pid is retried: its
worker died between starting it and recording itself, both under the study lock.

Stopping: see hpo.supervisor; StopSignals is the worker's side of it. A worker also stops, as on
SIGTERM, when the `run` process dies however it dies (SIGKILL, OOM killer): Linux's parent-death
signal, and a thread that watches the parent pid elsewhere.
"""

from __future__ import annotations

import gc
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import torch
from optuna.trial import TrialState

from basset import (
    BassetError,
    ResidentData,
    describe_os_error,
    is_user_os_error,
    load_data,
    open_shared,
    process_alive,
    setup_logging,
)
from hpo import packing, progress, slurm
from hpo.config import StudyConfig
from hpo.lifeline import end_with_parent
from hpo.objective import (
    TrainFn,
    TrialContext,
    TrialFailed,
    enqueue_retry,
    make_objective,
)
from hpo.pruning import make_pruner
from hpo.storage import StudyLock, make_engine, make_storage, storage_error
from hpo.study import make_sampler, run_dir, worker_seed

POLL_SECONDS = 1.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SAME_SIGNAL_S = 1.0


class StopSignals:
    """A worker's SIGINT/SIGTERM handler: the first signal asks to stop at the next evaluation,
    one more than SAME_SIGNAL_S later aborts the interval (KeyboardInterrupt)."""

    def __init__(self) -> None:
        self.first: float | None = None

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def requested(self) -> bool:
        return self.first is not None

    def _handle(self, signum: int, frame: object) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
            # The requeued trial's FAIL is the expected outcome, not a warning with a traceback.
            optuna.logging.set_verbosity(optuna.logging.ERROR)
        elif now - self.first > SAME_SIGNAL_S:
            raise KeyboardInterrupt


@dataclass
class RunPlan:
    """Everything the workers of one `basset-hpo run` share (picklable for 'spawn')."""

    config: StudyConfig
    url: str
    n_trials: int
    devices: list[str]  # one per worker: "cpu", "cuda:0", "cuda:0", "cuda:1", ...
    threads: int  # torch threads per worker
    # time.time() after which no trial starts and running trials stop at their next evaluation
    # (complete, with their best epoch: the run's wall time is bounded, not only its starts)
    deadline: float | None = None
    quiet: bool = False
    train_fn: TrainFn | None = None  # tests inject a fake; None is basset.train
    # The host's one read-only copy of the data (basset.shared_data), made by `run` before it
    # starts the workers; None: each worker loads the HDF5 itself (run_trials called directly)
    shared: Path | None = None


def worker_main(plan: RunPlan, rank: int, parent: int | None = None,
                messages: Any = None) -> None:
    """One worker process: pin the device, map the shared data (or load them), run trials until
    the total.
    `parent`: the run's pid (the worker stops when it dies); `messages`: a queue that gets the
    worker's one-line error (else it goes to stderr)."""
    stop = StopSignals()  # first: a forked worker starts with the run's own handlers
    stop.install()
    setup_logging(quiet=True)
    # With the live display on, Optuna's per-trial lines would tear it; the display shows them.
    optuna.logging.set_verbosity(optuna.logging.WARNING if plan.quiet else optuna.logging.ERROR)
    device = plan.devices[rank]
    torch.set_num_threads(plan.threads)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        packing.cap_memory(torch.device(device), plan.devices.count(device))
    if parent is not None:
        end_with_parent(parent, stop.requested)
    try:
        run_trials(plan, rank, stop.requested, run_pid=parent)
    except BassetError as err:
        _fail(rank, str(err), messages)
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
        _fail(rank, str(storage_error(plan.url, err)), messages)
    except OSError as err:
        if not is_user_os_error(err):
            raise
        _fail(rank, describe_os_error(err), messages)
    except KeyboardInterrupt:  # a second signal: the trial was requeued, nothing to add
        sys.exit(130)
    finally:  # a spawned worker exits through the interpreter's teardown: spare it the last
        gc.freeze()  # collection of everything alive (0.5-1 s once torch is loaded)


def _fail(rank: int, message: str, messages: Any) -> None:
    if messages is None:
        print(f"error: worker {rank}: {message}", file=sys.stderr)
    else:
        messages.put(message)
    sys.exit(2)


def run_trials(
    plan: RunPlan, rank: int, stop_requested: Callable[[], bool] = lambda: False, *,
    run_pid: int | None = None,
) -> int:
    """The worker loop (in-process; worker_main wraps it). Returns the trials this worker ran.
    `run_pid`: the `run` process (the worker's name says it; default this process)."""
    config, device = plan.config, plan.devices[rank]
    storage = make_storage(plan.url, config.heartbeat)
    engine = make_engine(plan.url)
    data = load_data(config.data) if plan.shared is None else open_shared(plan.shared)
    # Every worker gets its own seed, else all would suggest the same first points.
    study = optuna.load_study(
        study_name=config.name, storage=storage,
        sampler=make_sampler(config, worker_seed(config.seed, rank)), pruner=make_pruner(config),
    )
    study.set_user_attr("target_labels", data.target_labels)
    study.set_user_attr("data_path", str(config.data.resolve()))  # basset-hpo evaluate's default
    lock = StudyLock(plan.url, config.name, engine)
    ctx = TrialContext(
        config=config, data=data, resident=ResidentData(data, device), device=device,
        run_dir=run_dir(config, plan.url),
        engine=engine, worker=slurm.worker_name(rank, run_pid), train_fn=plan.train_fn,
        on_trial_start=lock.release, stop_requested=stop_requested, deadline=plan.deadline,
    )
    objective = make_objective(ctx)
    gc.freeze()  # what exists now lives as long as the worker: keep it out of per-trial gc runs
    study_id = storage.get_study_id_from_name(config.name)
    beats = config.heartbeat.interval > 0
    ran = 0
    try:
        while plan.deadline is None or time.time() < plan.deadline:
            with lock:  # the objective releases it as soon as its trial is RUNNING
                if stop_requested():
                    break
                # Before counting: a dead worker's trial turns into a WAITING retry.
                if beats:
                    _fail_stale_trials(study)
                retry_orphans(study, storage, study_id, local=not beats)
                trials = storage.get_all_trials(study_id, deepcopy=False)
                if progress.counted(trials) < plan.n_trials:
                    study.optimize(objective, n_trials=1, catch=(TrialFailed,))
                    ran += 1
                    continue
            # The total is reached, but a RUNNING trial may belong to a dead worker: stay until
            # they all end (or one turns stale and its retry needs a worker).
            if not beats or not any(t.state == TrialState.RUNNING for t in trials):
                break
            _idle_while_running(storage, study_id, config.heartbeat.interval, stop_requested)
    finally:
        engine.dispose()
    return ran


def retry_orphans(study: optuna.Study, storage: optuna.storages.BaseStorage,
                  study_id: int, *, local: bool = True) -> list[int]:
    """Fail and retry (a WAITING copy resuming from the checkpoint) the RUNNING trials whose
    process is gone; their numbers. Call it under the study lock.

    An ownerless RUNNING trial (no pid) is an orphan wherever it ran: its worker writes host
    and pid before it releases the study lock, so under the lock only a worker killed in that
    window leaves one (its heartbeat, if any, never started either). `local` (heartbeats off):
    also the trials of this host whose pid is no longer alive."""
    host = socket.gethostname()
    retried = []
    for trial in storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
        owner, pid = trial.user_attrs.get("host"), trial.user_attrs.get("pid")
        if pid is None:
            reason = "its process ended before recording itself (no host/pid)"
        elif local and owner == host and isinstance(pid, int) and not process_alive(pid):
            reason = f"its process ({host}, pid {pid}) ended without finishing it"
        else:
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        if storage.set_trial_state_values(trial_id, TrialState.FAIL):
            enqueue_retry(study, storage.get_trial(trial_id))
            retried.append(trial.number)
    return retried


def _fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():  # experimental since 2.9, and what heartbeats are for
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _idle_while_running(storage: optuna.storages.BaseStorage, study_id: int, seconds: float,
                        stop_requested: Callable[[], bool]) -> None:
    """Wait up to `seconds` (the next stale-trial sweep), but no longer than the study has
    RUNNING trials: the worker of the last one must not keep the run open for a heartbeat."""
    end = time.monotonic() + seconds
    while not stop_requested() and time.monotonic() < end:
        time.sleep(POLL_SECONDS)
        if not storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            return
