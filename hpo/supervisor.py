"""`basset-hpo run`: create the study once, start one worker process per planned device, show
progress until they end.

Stopping: SIGINT or SIGTERM on `basset-hpo run` is forwarded to the workers; each stops its
trial at the next evaluation (an epoch's end, or the study's eval_every: checkpoint written, so
the stop takes at most one interval), requeues it as a WAITING copy and exits, and the
run exits 130. The next run resumes those trials first. A second signal (more than
SAME_SIGNAL_S later: Ctrl-C reaches a worker both directly and through the parent) abandons
the epoch; the trial is still requeued, from the previous epoch's checkpoint.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import optuna
from rich.console import Console
from rich.live import Live

from basset import BassetError, shared_data
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


def run_study(plan: RunPlan) -> progress.Snapshot:
    """Start the workers, show progress until they end, return the final state of the study."""
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
        return done
    # One read-only copy of the data for every worker of the host, removed when the run ends.
    with shared_data(plan.config.data, plan.config.name) as folder:
        return _start_workers(replace(plan, shared=folder), storage, console)


def _start_workers(plan: RunPlan, storage: optuna.storages.BaseStorage,
                   console: Console) -> progress.Snapshot:
    context = mp.get_context("spawn")
    messages = context.SimpleQueue()
    procs = [
        context.Process(target=worker_main, args=(plan, rank, os.getpid(), messages),
                        name=f"basset-hpo-worker-{rank}")
        for rank in range(len(plan.devices))
    ]
    if _run_workers(procs, storage, plan, console):
        raise RunInterrupted(progress.snapshot(storage, plan.config.name))
    _raise_failures(procs, messages)
    return progress.snapshot(storage, plan.config.name)


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


def _run_workers(procs: Sequence[mp.process.BaseProcess], storage: optuna.storages.BaseStorage,
                 plan: RunPlan, console: Console) -> bool:
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
        _watch(procs, storage, plan, console)
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


def _watch(
    procs: Sequence[mp.process.BaseProcess],
    storage: optuna.storages.BaseStorage,
    plan: RunPlan,
    console: Console,
) -> None:
    """Show progress until the workers end: a live table on a terminal, else (a log file, a
    batch job) one headline per finished trial, and every LOG_EVERY_S one line per running
    trial (where it stands in its epoch)."""
    name, n_trials = plan.config.name, plan.n_trials
    if console.is_terminal:
        with Live(console=console, refresh_per_second=2) as live:
            while any(proc.is_alive() for proc in procs):
                snap = progress.snapshot(storage, name)
                live.update(progress.render(snap, n_trials, plan.config.max_epochs))
                time.sleep(POLL_SECONDS)
        return
    shown = progress.snapshot(storage, name).finished
    lines_at = time.monotonic()
    while any(proc.is_alive() for proc in procs):
        time.sleep(POLL_SECONDS)
        snap = progress.snapshot(storage, name)
        if snap.finished != shown:
            shown = snap.finished
            console.print(progress.headline(snap, n_trials))
        if time.monotonic() - lines_at >= LOG_EVERY_S:
            lines_at = time.monotonic()
            for line in progress.trial_lines(snap, plan.config.max_epochs):
                console.print(line)
