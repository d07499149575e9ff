"""`basset-hpo run`: create the study once, then worker processes that pull trials from it.

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

Stopping: SIGINT or SIGTERM on `basset-hpo run` is forwarded to the workers; each ends its
current epoch (checkpoint written), requeues its trial as a WAITING copy and exits, and the
run exits 130. The next run resumes those trials first. A second signal (more than
SAME_SIGNAL_S later: Ctrl-C reaches a worker both directly and through the parent) abandons
the epoch; the trial is still requeued, from the previous epoch's checkpoint.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
import torch
from optuna.trial import TrialState
from rich.console import Console
from rich.live import Live

from basset.cliutil import setup_logging
from basset.data import load_data
from basset.errors import BassetError
from hpo import packing, progress, records
from hpo.config import ConfigError, StudyConfig
from hpo.objective import TrainFn, TrialContext, TrialFailed, make_objective
from hpo.packing import TrialsPerGpu
from hpo.space import reference_values
from hpo.storage import (
    StudyLock,
    make_engine,
    make_storage,
    mask,
    sqlite_path,
    storage_error,
)

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SAME_SIGNAL_S = 1.0


class WorkerFailed(Exception):
    """A worker process ended with an error (its own message is on stderr)."""


class RunInterrupted(Exception):
    """SIGINT/SIGTERM stopped the run; the interrupted trials wait in the study to resume."""

    def __init__(self, snapshot: progress.Snapshot) -> None:
        super().__init__("interrupted")
        self.snapshot = snapshot


class StopSignals:
    """A worker's SIGINT/SIGTERM handler: the first signal asks to stop after the current epoch,
    one more than SAME_SIGNAL_S later aborts the epoch (KeyboardInterrupt)."""

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
    deadline: float | None = None  # no new trial starts after this time.time()
    quiet: bool = False
    train_fn: TrainFn | None = None  # tests inject a fake; None is basset.trainer.train


def plan_devices(
    gpus: str | None,
    trials_per_gpu: TrialsPerGpu,
    workers: int | None,
    cpu_workers: int = 1,
    *,
    config: StudyConfig | None = None,
) -> list[str]:
    """Worker devices: every GPU (or the listed ones) x trials_per_gpu ("auto": as many as fit,
    from the card's free memory and the `config` study's largest trial), else `workers` CPU
    workers (default: the study's cpu_workers)."""
    if trials_per_gpu != "auto" and trials_per_gpu < 1:
        raise ConfigError(f"--trials-per-gpu must be >= 1, got {trials_per_gpu}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == "none" or (gpus is None and count == 0):
        return ["cpu"] * (workers or cpu_workers)
    if count == 0:
        raise ConfigError(f"--gpus {gpus}: CUDA is not available here (use --workers for CPUs)")
    if gpus in (None, "all"):
        ids = list(range(count))
    else:
        try:
            ids = [int(part) for part in gpus.split(",")]
        except ValueError:
            raise ConfigError(f"--gpus takes all, none or a list like 0,2; got {gpus!r}") from None
        bad = [i for i in ids if not 0 <= i < count]
        if bad or len(set(ids)) != len(ids):
            raise ConfigError(f"--gpus {gpus}: this machine has GPUs 0..{count - 1}")
    if workers is not None:
        raise ConfigError("--workers is for CPU runs; with GPUs use --trials-per-gpu")
    if trials_per_gpu == "auto":
        if config is None:
            raise ValueError("--trials-per-gpu auto needs the study config")
        per_gpu = {i: packing.auto_trials_per_gpu(config, i) for i in ids}
    else:
        per_gpu = {i: trials_per_gpu for i in ids}
    return [f"cuda:{i}" for i in ids for _ in range(per_gpu[i])]


def make_sampler(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    """The study's sampler, every argument we rely on set explicitly (Optuna 4.9 and 5.x agree)."""
    s = config.sampler
    if s.type == "tpe":
        with warnings.catch_warnings():  # group=True is experimental, and chosen knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                n_startup_trials=s.n_startup_trials,
                multivariate=s.multivariate,
                group=s.group and s.multivariate,
                constant_liar=s.constant_liar,
                seed=seed,
            )
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.type == "gp":
        return optuna.samplers.GPSampler(
            n_startup_trials=s.n_startup_trials, deterministic_objective=False, seed=seed
        )
    try:
        import cmaes  # noqa: F401  (CmaEsSampler would only fail at the first trial)
    except ImportError:
        raise ConfigError("sampler.type = cmaes needs the cmaes package: pip install cmaes") from None
    return optuna.samplers.CmaEsSampler(n_startup_trials=s.n_startup_trials, seed=seed)


def make_pruner(config: StudyConfig) -> optuna.pruners.BasePruner:
    p = config.pruner
    if p.type == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=p.min_resource,
            max_resource=config.max_epochs,
            reduction_factor=p.reduction_factor,
            bootstrap_count=p.bootstrap_count,
        )
    if p.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials,
            n_warmup_steps=p.n_warmup_steps,
            interval_steps=1,
            n_min_trials=p.n_min_trials,
        )
    return optuna.pruners.NopPruner()


def prepare_study(config: StudyConfig, url: str) -> optuna.storages.RDBStorage:
    """Create the study and the epoch table once, before any worker; a new study gets the
    reference configurations enqueued. Re-running finds the study and continues it."""
    make_sampler(config, config.seed)  # a sampler that cannot be built fails here, not in workers
    engine = make_engine(url)
    try:
        # Database-wide, not per study: hosts starting together on a fresh PostgreSQL database
        # would otherwise race to create Optuna's tables (duplicate key in pg_type).
        with StudyLock(url, "", engine):
            storage = make_storage(url, config.heartbeat)
            records.create_tables(engine)
            study = optuna.create_study(
                study_name=config.name, storage=storage, direction=config.direction,
                load_if_exists=True,
            )
            if not study.get_trials(deepcopy=False):
                for ref in config.enqueue:
                    study.enqueue_trial(
                        reference_values(config, ref), user_attrs={"reference": ref.label}
                    )
    finally:
        engine.dispose()
    return storage


def run_dir(config: StudyConfig, url: str) -> Path:
    """Trial folders (checkpoints): beside an SQLite database, else under ./studies/."""
    path = sqlite_path(url)
    return (path.parent if path else Path("studies")) / config.name


def run_study(plan: RunPlan) -> progress.Snapshot:
    """Start the workers, show progress until they end, return the final state of the study."""
    storage = prepare_study(plan.config, plan.url)
    console = Console(stderr=True, quiet=plan.quiet, soft_wrap=True)
    # After prepare_study: a storage that cannot be opened is the run's only line.
    console.print(
        f"study {plan.config.name} ({plan.config.source}) on {mask(plan.url)}: "
        f"{len(plan.devices)} worker(s) on {', '.join(sorted(set(plan.devices)))}, "
        f"{plan.n_trials} trials in total"
    )
    done = progress.snapshot(storage, plan.config.name)
    if done.counted >= plan.n_trials:
        log.info("%s already has %d trials (--n-trials %d)", plan.config.name, done.counted,
                 plan.n_trials)
        return done
    context = mp.get_context("spawn")
    procs = [
        context.Process(target=worker_main, args=(plan, rank), name=f"basset-hpo-worker-{rank}")
        for rank in range(len(plan.devices))
    ]
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
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
    if received:
        raise RunInterrupted(progress.snapshot(storage, plan.config.name))
    failed = [f"worker {rank} exited with {proc.exitcode}" for rank, proc in enumerate(procs)
              if proc.exitcode != 0]
    if failed:
        raise WorkerFailed("; ".join(failed) + " (see its messages above)")
    return progress.snapshot(storage, plan.config.name)


def _watch(
    procs: list[mp.process.BaseProcess],
    storage: optuna.storages.BaseStorage,
    plan: RunPlan,
    console: Console,
) -> None:
    """Show progress until the workers end: a live table on a terminal, else (a log file, a
    batch job) one headline per finished trial."""
    name, n_trials = plan.config.name, plan.n_trials
    if console.is_terminal:
        with Live(console=console, refresh_per_second=2) as live:
            while any(proc.is_alive() for proc in procs):
                snap = progress.snapshot(storage, name)
                live.update(progress.render(snap, n_trials, plan.config.max_epochs))
                time.sleep(POLL_SECONDS)
        return
    shown = progress.snapshot(storage, name).finished
    while any(proc.is_alive() for proc in procs):
        time.sleep(POLL_SECONDS)
        snap = progress.snapshot(storage, name)
        if snap.finished != shown:
            shown = snap.finished
            console.print(progress.headline(snap, n_trials))


def worker_main(plan: RunPlan, rank: int) -> None:
    """One worker process: pin the device, load the data once, run trials until the total."""
    setup_logging(quiet=True)
    # With the live display on, Optuna's per-trial lines would tear it; the display shows them.
    optuna.logging.set_verbosity(optuna.logging.WARNING if plan.quiet else optuna.logging.ERROR)
    device = plan.devices[rank]
    torch.set_num_threads(plan.threads)
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        packing.cap_memory(torch.device(device), plan.devices.count(device))
    stop = StopSignals()
    stop.install()
    try:
        run_trials(plan, rank, stop.requested)
    except BassetError as err:
        print(f"error: worker {rank}: {err}", file=sys.stderr)
        sys.exit(2)
    except sqlalchemy.exc.SQLAlchemyError as err:
        print(f"error: worker {rank}: {storage_error(plan.url, err)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # a second signal: the trial was requeued, nothing to add
        sys.exit(130)


def run_trials(
    plan: RunPlan, rank: int, stop_requested: Callable[[], bool] = lambda: False
) -> int:
    """The worker loop (in-process; worker_main wraps it). Returns the trials this worker ran."""
    config, device = plan.config, plan.devices[rank]
    storage = make_storage(plan.url, config.heartbeat)
    engine = make_engine(plan.url)
    data = load_data(config.data)
    # Every worker gets its own seed, else all would suggest the same first points.
    study = optuna.load_study(
        study_name=config.name, storage=storage,
        sampler=make_sampler(config, config.seed + rank), pruner=make_pruner(config),
    )
    study.set_user_attr("target_labels", data.target_labels)
    lock = StudyLock(plan.url, config.name, engine)
    ctx = TrialContext(
        config=config, data=data, device=device, run_dir=run_dir(config, plan.url),
        engine=engine, worker=f"{socket.gethostname()}/{rank}", train_fn=plan.train_fn,
        on_trial_start=lock.release, stop_requested=stop_requested,
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
                if beats:  # before counting: a dead worker's trial turns into a WAITING retry
                    _fail_stale_trials(study)
                trials = storage.get_all_trials(study_id, deepcopy=False)
                if progress.counted(trials) < plan.n_trials:
                    study.optimize(objective, n_trials=1, catch=(TrialFailed,))
                    ran += 1
                    continue
            # The total is reached, but a RUNNING trial may belong to a dead worker: stay until
            # they all end (or one turns stale and its retry needs a worker).
            if not beats or not any(t.state == TrialState.RUNNING for t in trials):
                break
            _idle(config.heartbeat.interval, stop_requested)
    finally:
        engine.dispose()
    return ran


def _fail_stale_trials(study: optuna.Study) -> None:
    with warnings.catch_warnings():  # experimental since 2.9, and what heartbeats are for
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _idle(seconds: float, stop_requested: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not stop_requested() and time.monotonic() < end:
        time.sleep(POLL_SECONDS)


def default_threads(n_workers: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // n_workers)


def ensure_data(config: StudyConfig) -> None:
    """Before any worker: make the demo data if the study asks for it, else check the file."""
    if not config.data.exists() and config.generate_demo_data:
        from basset.demo import make_demo

        log.info("generating the demo data set %s", config.data)
        config.data.parent.mkdir(parents=True, exist_ok=True)
        make_demo(config.data)
    load_data(config.data, splits=("valid",))  # DataError now rather than in every worker

