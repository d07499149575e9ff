"""`basset-hpo run`: create the study once, start one worker process per planned device, show
progress until they end.

Stopping: SIGINT or SIGTERM on `basset-hpo run` is forwarded to the workers; each stops its
trial at the next evaluation (an epoch's end, or the study's eval_every: checkpoint written, so
the stop takes at most one interval), requeues it as a WAITING copy and exits, and the
run exits 130. The next run resumes those trials first. A second signal (more than
SAME_SIGNAL_S later: Ctrl-C reaches a worker both directly and through the parent) abandons
the epoch; the trial is still requeued, from the previous epoch's checkpoint.

Start-up and wrap-up (the run's own clock, not its trials'): on Linux, CPU workers are forked
from this process once it has imported the trainer, so they start training at once instead of
importing torch again each (see start_method); the run notices a worker's end at once (it waits
on the processes, not on a timer); its own end-of-run work (the test scores) starts on the
device of the first worker to finish while the others finish their last epochs, and is
completed, with only what is new, when all have ended.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import wait
from typing import Any, Literal

import optuna
import torch
from rich.console import Console
from rich.live import Live

from basset import BassetError, preload_optimizers, shared_data
from hpo import interval, progress
from hpo.devices import default_threads
from hpo.storage import StudyLock, make_engine, mask
from hpo.study import prepare_study
from hpo.workers import (
    POLL_SECONDS,
    SAME_SIGNAL_S,
    STOP_SIGNALS,
    RunPlan,
    retry_orphans,
    worker_main,
)

log = logging.getLogger(__name__)
LOG_EVERY_S = 30.0  # without a terminal: the running trials' lines this often

# The run's own work once trials have ended (`run`: the test scores), given the study's storage,
# a device no worker uses any more and whether it is the last call. Called as soon as the first
# worker ended while others still train, and again when all have ended: each call does only
# what the earlier one left.
WrapUp = Callable[[optuna.storages.RDBStorage, str, bool], None]


class WorkerFailed(Exception):
    """A worker process ended with an error of ours (its traceback is on stderr)."""


class RunStopped(BassetError):
    """The workers stopped on an error of the user's (a full disk, a lost storage): their
    message, once however many workers met it."""


class RunInterrupted(Exception):
    """SIGINT/SIGTERM stopped the run; the interrupted trials wait in the study to resume."""

    def __init__(self, snapshot: progress.Snapshot) -> None:
        super().__init__("interrupted")
        self.snapshot = snapshot


def run_study(plan: RunPlan, wrap_up: WrapUp | None = None) -> progress.Snapshot:
    """Start the workers, show progress until they end, return the final state of the study
    (after `wrap_up`, if given, on a run that ended without error or signal)."""
    storage = prepare_study(plan.config, plan.url)
    # The study's one evaluation interval (eval_every = "auto" times it on the first run)
    plan = replace(plan, config=interval.resolve(plan.config, plan.url, storage, plan.devices,
                                                 plan.threads))
    _retry_orphans(plan, storage)  # before counting: an orphan must not count as done
    console = Console(stderr=True, quiet=plan.quiet, soft_wrap=True)
    done = progress.snapshot(storage, plan.config.name)
    plan = _cap_workers(plan, plan.n_trials - done.counted, console)
    # After prepare_study: a storage that cannot be opened is the run's only line.
    console.print(
        f"study {plan.config.name} ({plan.config.source}) on {mask(plan.url)}: "
        f"{len(plan.devices)} worker(s) on {', '.join(sorted(set(plan.devices)))}, "
        f"{plan.n_trials} trials in total"
    )
    if done.counted >= plan.n_trials:
        log.info("%s already has %d trials (--n-trials %d)", plan.config.name, done.counted,
                 plan.n_trials)
    else:
        # One read-only copy of the data for every worker of the host, removed when the run
        # ends.
        with shared_data(plan.config.data, plan.config.name) as folder:
            _start_workers(replace(plan, shared=folder), storage, console, wrap_up)
    if wrap_up is not None:
        wrap_up(storage, plan.devices[0], True)
    return progress.snapshot(storage, plan.config.name)


def start_method(devices: Sequence[str]) -> Literal["fork", "spawn"]:
    """How the workers start: "fork" (a copy of this process, its imports done: no worker
    imports torch, optuna and the trainer again, seconds of CPU each) on Linux when every worker
    trains on the CPU, CUDA is not initialised here and this process runs no other thread (a
    fork copies the calling thread only: a lock another one held would stay locked); "spawn" (a
    fresh interpreter) otherwise."""
    alone = threading.active_count() == 1
    cpu = all(device == "cpu" for device in devices) and not torch.cuda.is_initialized()
    return "fork" if sys.platform == "linux" and cpu and alone else "spawn"


def _start_workers(plan: RunPlan, storage: optuna.storages.RDBStorage, console: Console,
                   wrap_up: WrapUp | None) -> None:
    method = start_method(plan.devices)
    if method == "fork":
        preload_optimizers()  # once here, not once per worker at its first trial
        storage.engine.dispose()  # no pooled connection is shared with the workers
    context = mp.get_context("fork") if method == "fork" else mp.get_context("spawn")
    messages = context.SimpleQueue()
    procs = [
        context.Process(target=worker_main, args=(plan, rank, os.getpid(), messages),
                        name=f"basset-hpo-worker-{rank}")
        for rank in range(len(plan.devices))
    ]
    if _run_workers(procs, storage, plan, console, wrap_up):
        raise RunInterrupted(progress.snapshot(storage, plan.config.name))
    _raise_failures(procs, messages)


def _cap_workers(plan: RunPlan, left: int, console: Console) -> RunPlan:
    """No more workers than trials left to start (a worker with none would only load the data
    and leave); says so in one line."""
    if 0 < left < len(plan.devices):
        console.print(f"{left} trial(s) left of {plan.n_trials}: starting {left} of the "
                      f"{len(plan.devices)} worker(s)")
        return replace(plan, devices=plan.devices[:left], threads=default_threads(left))
    return plan


def _retry_orphans(plan: RunPlan, storage: optuna.storages.BaseStorage) -> None:
    """Under the study lock, retry the trials that never recorded their owner and, heartbeats
    off, this host's trials whose process is gone."""
    engine = make_engine(plan.url)
    try:
        with StudyLock(plan.url, plan.config.name, engine):
            study = optuna.load_study(study_name=plan.config.name, storage=storage)
            retry_orphans(study, storage, storage.get_study_id_from_name(plan.config.name),
                          local=plan.config.heartbeat.interval == 0)
    finally:
        engine.dispose()


def _run_workers(procs: Sequence[mp.process.BaseProcess], storage: optuna.storages.RDBStorage,
                 plan: RunPlan, console: Console, wrap_up: WrapUp | None) -> bool:
    """Start the workers, forward SIGINT/SIGTERM to them, watch them until they end; whether a
    signal came."""
    received: list[float] = []

    def forward(signum: int, frame: object) -> None:
        now = time.monotonic()
        if not received:
            print("stopping: each running trial stops after its current evaluation and is "
                  "requeued (the same command resumes it); a second Ctrl-C or SIGTERM aborts "
                  "now", file=sys.stderr, flush=True)
        elif now - received[0] > SAME_SIGNAL_S and len(received) == 1:
            print("aborting now: the running trials are requeued from their last checkpoint",
                  file=sys.stderr, flush=True)
        received.append(now)
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS} if main_thread else {}
    try:
        for proc in procs:
            proc.start()
        _watch(procs, storage, plan, console, _EarlyWrapUp(procs, plan.devices, storage, wrap_up,
                                                           lambda: bool(received)))
    finally:
        for proc in procs:
            if proc.pid is not None:
                proc.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return bool(received)


def _raise_failures(procs: Sequence[mp.process.BaseProcess], messages: Any) -> None:
    """RunStopped when the workers stopped on the user's error (each message once), WorkerFailed
    when one ended with an error of ours."""
    failed = [f"worker {rank} exited with {proc.exitcode}" for rank, proc in enumerate(procs)
              if proc.exitcode != 0]
    said = []
    while not messages.empty():
        said.append(messages.get())
    if failed and all(proc.exitcode in (0, 2) for proc in procs) and said:
        raise RunStopped("; ".join(dict.fromkeys(said)))  # each message once
    if failed:
        raise WorkerFailed("; ".join(failed) + " (see its messages above)")


class _EarlyWrapUp:
    """The run's wrap-up, once, as soon as a worker ended (exit code 0) while others still
    train: on the freed worker's device, in the time the others take to end their last epoch.
    Not after a signal (the run is stopping, not ending)."""

    def __init__(self, procs: Sequence[mp.process.BaseProcess], devices: Sequence[str],
                 storage: optuna.storages.RDBStorage, wrap_up: WrapUp | None,
                 stopping: Callable[[], bool]) -> None:
        self.procs, self.devices, self.storage = procs, devices, storage
        self.wrap_up, self.stopping = wrap_up, stopping  # wrap_up: None once it has run

    def __call__(self) -> None:
        if self.wrap_up is None or self.stopping():
            return
        ended = [rank for rank, proc in enumerate(self.procs) if proc.exitcode == 0]
        if ended and len(ended) < len(self.procs):
            wrap_up, self.wrap_up = self.wrap_up, None
            wrap_up(self.storage, self.devices[ended[0]], False)


def _wait(procs: Sequence[mp.process.BaseProcess], seconds: float) -> None:
    """Wait up to `seconds`, or less if a worker ends meanwhile."""
    alive = [proc.sentinel for proc in procs if proc.is_alive()]
    if alive:
        wait(alive, seconds)


def _watch(
    procs: Sequence[mp.process.BaseProcess],
    storage: optuna.storages.BaseStorage,
    plan: RunPlan,
    console: Console,
    on_wake: Callable[[], None],
) -> None:
    """Show progress until the workers end: a live table on a terminal, else (a log file, a
    batch job) one headline per finished trial, and every LOG_EVERY_S one line per running
    trial (where it stands in its epoch). Wakes at once when a worker ends; `on_wake` runs
    after every wait."""
    name, n_trials = plan.config.name, plan.n_trials
    if console.is_terminal:
        with Live(console=console, refresh_per_second=2) as live:
            while any(proc.is_alive() for proc in procs):
                snap = progress.snapshot(storage, name)
                live.update(progress.render(snap, n_trials, plan.config.max_epochs))
                _wait(procs, POLL_SECONDS)
                on_wake()
        return
    shown = progress.snapshot(storage, name).finished
    lines_at = time.monotonic()
    while any(proc.is_alive() for proc in procs):
        _wait(procs, POLL_SECONDS)
        on_wake()
        snap = progress.snapshot(storage, name)
        if snap.finished != shown:
            shown = snap.finished
            console.print(progress.headline(snap, n_trials))
        if time.monotonic() - lines_at >= LOG_EVERY_S:
            lines_at = time.monotonic()
            for line in progress.trial_lines(snap, plan.config.max_epochs):
                console.print(line)
