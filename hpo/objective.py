"""A trial = suggest JobParams, train them through the trainer's hooks, return the best AUROC.

How a trial ends:
- COMPLETE: max_epochs or stagnant_t reached, or the run's --timeout passed (user attr
  `stop_reason` "timeout"); the value is the best epoch's mean valid AUROC.
- PRUNED: the pruner stopped it (user attr `pruned_at_epoch`), or its architecture cannot be
  built for this sequence length (user attr `invalid_architecture`; never trained). Pruned
  rather than failed so that TPE learns to avoid that region.
- FAIL: the loss diverged (NaN/inf), CUDA ran out of memory, or the trainer refused the params;
  the reason is the user attr `fail_reason` and the worker goes on with the next trial.

Seeds: every trial stores the `-rand` it trains with as its user attr `seed`.

Evaluations: one per epoch, or with the study's `eval_every` one per that many training
sequences; the pruner's steps, max_epochs and stagnant_t count evaluations, and SIGINT/SIGTERM
and --timeout stop a trial at its next one.

Resuming: every trial trains under the prefix in its user attr `save_prefix` and writes
PREFIX_check.pt after each evaluation. A trial that was replaced by a WAITING copy (the heartbeat
retry of a crashed worker's trial, or the requeue of an interrupted one: `requeue`) inherits
that user attr and the reported evaluations, so the copy restarts from the checkpoint (mid-epoch
too: the same remaining batches), writes to the same files, and continues at the next one.
"""

from __future__ import annotations

import gc
import math
import os
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
import torch
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from basset import (
    ArchitectureError,
    BassetData,
    BassetError,
    EpochMetrics,
    FullValidation,
    JobParams,
    OutputError,
    ResidentData,
    StopTraining,
    TrainHooks,
    TrainingDiverged,
    TrainOptions,
    TrainResult,
    check_architecture,
    is_user_os_error,
    read_history,
    train,
    validate_checkpoint,
)
from hpo import service_tables
from hpo.config import StudyConfig
from hpo.space import suggest_params, suggest_training
from hpo.trialprogress import ProgressReporter

TrainFn = Callable[..., TrainResult]
PRUNED = "pruned"
INTERRUPTED = "interrupted"
TIMEOUT = "timeout"  # `run --timeout` ran out: the trial ends complete with its best epoch


class TrialFailed(Exception):
    """This trial failed for a stored reason; the worker catches it and goes on."""


class TrialInterrupted(TrialFailed):
    """The worker was asked to stop; the trial was requeued to resume from its checkpoint."""


@dataclass
class TrialContext:
    """What every trial of one worker shares."""

    config: StudyConfig
    data: BassetData
    device: str
    run_dir: Path  # trial_<n>/ folders with checkpoints go here
    engine: sa.Engine  # the study database, for epoch rows
    worker: str = "0"
    resident: ResidentData | None = None  # `data` on `device`, copied once for all the trials
    train_fn: TrainFn | None = None  # None: basset.train; tests inject a fake
    on_trial_start: Callable[[], None] | None = None  # e.g. release the study lock
    # SIGINT/SIGTERM: stop at the next evaluation
    stop_requested: Callable[[], bool] | None = None
    deadline: float | None = None  # time.time() at which a running trial stops at its evaluation


def make_objective(ctx: TrialContext) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        # Who runs it, before the study lock is released: a run on this host that finds the
        # trial RUNNING with its process gone retries it (hpo.workers, heartbeats off).
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if ctx.on_trial_start is not None:
            ctx.on_trial_start()
        trial.set_user_attr("worker", ctx.worker)
        trial.set_user_attr("device", ctx.device)
        params = suggest_params(trial, ctx.config, ctx.data.seq_len)
        training = suggest_training(trial, ctx.config)
        trial.set_user_attr("params_table", params.to_table())
        trial.set_user_attr("rc", bool(training.get("rc", False)))  # basset-train -rc reruns it
        try:
            check_architecture(params, ctx.data.seq_len)
        except ArchitectureError as err:
            trial.set_user_attr("invalid_architecture", str(err))
            raise optuna.TrialPruned(f"invalid architecture: {err}") from None
        try:
            result = _train(trial, params, training, ctx)
            full = _validate_best(trial, result, ctx)
        finally:
            release_memory()
        return _finish(trial, result, full)

    return objective


def _train(trial: optuna.Trial, params: JobParams, training: dict[str, Any],
           ctx: TrialContext) -> TrainResult:
    frozen = _frozen(trial)
    original = _retried_number(frozen)
    prefix, restart = _resume(trial, frozen, original, ctx)
    options = TrainOptions(
        max_epochs=int(training.get("max_epochs", ctx.config.max_epochs)),
        stagnant_t=ctx.config.stagnant_t,
        eval_every=ctx.config.eval_every,
        valid_subset=ctx.config.eval_subset,
        rand=_seed(trial, frozen, original, ctx),
        rc=bool(training.get("rc", False)),
        device=ctx.device,
        save_prefix=prefix,
        restart=restart,
        seed_model=ctx.config.seed_model,
        freeze_conv=bool(training.get("freeze_conv", False)),
        quiet=True,
    )
    trial.set_user_attr("train_command", train_command(options, ctx.config.data))
    return _run_training(trial, params, options, ctx)


def _resume(trial: optuna.Trial, frozen: FrozenTrial, original: int | None,
            ctx: TrialContext) -> tuple[Path, Path | None]:
    """The trial's save prefix (a retry keeps its original's) and the checkpoint it restarts
    from: None for a fresh trial, or a retry whose first epoch never finished."""
    prefix = frozen.user_attrs.get("save_prefix") if original is not None else None
    if prefix is None:
        prefix = str(ctx.run_dir / f"trial_{trial.number}" / "model")
        trial.set_user_attr("save_prefix", prefix)
    check = Path(f"{prefix}_check.pt")
    restart = check if original is not None and check.exists() else None
    if restart is not None:
        trial.set_user_attr("resumed_from", str(restart))
        _catch_up(trial, frozen, restart, ctx)
    return Path(prefix), restart


def _seed(trial: optuna.Trial, frozen: FrozenTrial, original: int | None,
          ctx: TrialContext) -> int:
    """The trial's -rand, stored: trial n trains with seed + n; a retry keeps its original's
    seed; a confirmation (hpo.confirm) comes enqueued with its own."""
    first = trial.number if original is None else original
    rand = int(frozen.user_attrs.get("seed", ctx.config.seed + first))
    trial.set_user_attr("seed", rand)
    return rand


def _epoch_hook(trial: optuna.Trial, ctx: TrialContext,
                reporter: ProgressReporter) -> Callable[[EpochMetrics], None]:
    """Per evaluation: the epoch's row, the report to the pruner, and the stop requests."""
    study_name = trial.study.study_name

    def on_epoch_end(m: EpochMetrics) -> None:
        service_tables.write_epoch(ctx.engine, study_name, trial.number, m)
        reporter.evaluated(m.sequences)
        if math.isfinite(m.valid_metric):
            trial.report(m.valid_metric, m.epoch)
            if trial.should_prune():
                raise StopTraining(PRUNED)
        if ctx.stop_requested is not None and ctx.stop_requested():
            raise StopTraining(INTERRUPTED)
        if ctx.deadline is not None and time.time() >= ctx.deadline:
            raise StopTraining(TIMEOUT)

    return on_epoch_end


def _run_training(trial: optuna.Trial, params: JobParams, options: TrainOptions,
                  ctx: TrialContext) -> TrainResult:
    """Train; map what can go wrong to the trial's end: FAIL with a stored reason (the worker
    goes on), or requeued to resume (an interruption, a disk the worker cannot write)."""
    train_fn = ctx.train_fn or train
    reporter = ProgressReporter(trial)
    hooks = TrainHooks(_epoch_hook(trial, ctx, reporter), reporter)
    try:
        result = train_fn(params, ctx.data, options=options, hooks=hooks, resident=ctx.resident)
    except TrainingDiverged as err:
        reason = f"diverged: {err}"
    except torch.cuda.OutOfMemoryError as err:
        reason = f"CUDA out of memory on {ctx.device}: {str(err).splitlines()[0]}"
    except OutputError:  # disk full, read-only: every trial would fail; the worker stops
        requeue(trial, "could not write its files")
        raise
    except OSError as err:
        if not is_user_os_error(err):
            raise
        requeue(trial, "could not write its files")
        raise
    except BassetError as err:
        reason = f"trainer refused the params: {err}"
    except KeyboardInterrupt:  # a second Ctrl-C: the epoch was abandoned, its checkpoint is not
        requeue(trial)
        raise
    else:
        if result.stop_reason != INTERRUPTED:
            return result
        requeue(trial)
        raise TrialInterrupted(f"interrupted after evaluation {result.epochs_run}; requeued")
    # Outside the except blocks, so the traceback (and the tensors its frames hold) is gone.
    trial.set_user_attr("fail_reason", reason)
    raise TrialFailed(reason)


def train_command(options: TrainOptions, data: Path) -> str:
    """How `basset-train` reruns a trial, its params table saved as params.txt."""
    flags = f" -seed {options.seed_model}" if options.seed_model is not None else ""
    flags += " --freeze-conv" if options.freeze_conv else ""
    flags += " -rc" if options.rc else ""
    flags += f" --eval-every {options.eval_every}" if options.eval_every is not None else ""
    flags += (f" --valid-subset {options.valid_subset}" if options.valid_subset is not None
              else "")
    return (f"basset-train -job params.txt{flags} -max_epochs {options.max_epochs} -stagnant_t "
            f"{options.stagnant_t} -rand {options.rand} {data}")


def _frozen(trial: optuna.Trial) -> FrozenTrial:
    """The trial as stored (system attrs, inherited intermediate values)."""
    running = trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return next(t for t in running if t.number == trial.number)


def _retried_number(trial: FrozenTrial) -> int | None:
    with warnings.catch_warnings():  # experimental since 2.8, stable in practice
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)


def _catch_up(trial: optuna.Trial, frozen: FrozenTrial, restart: Path, ctx: TrialContext) -> None:
    """Record the epochs the checkpoint holds but the replaced trial never reported (it died
    between writing the checkpoint and reporting), so no epoch is missing or trained twice."""
    reported = max(frozen.intermediate_values, default=0)
    for m in read_history(restart):
        if m.epoch > reported:
            service_tables.write_epoch(ctx.engine, trial.study.study_name, trial.number, m)
            if math.isfinite(m.valid_metric):
                trial.report(m.valid_metric, m.epoch)


def requeue(trial: optuna.Trial, reason: str = INTERRUPTED) -> None:
    """Enqueue a WAITING copy of this running trial that resumes from its checkpoint (the same
    bookkeeping as Optuna's heartbeat retry, so progress.counted sees one trial, not two); the
    caller then ends this one FAIL."""
    enqueue_retry(trial.study, _frozen(trial))
    trial.set_user_attr("fail_reason", reason)


def enqueue_retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """A WAITING copy of `trial` that resumes from its checkpoint (Optuna's retry bookkeeping)."""
    with warnings.catch_warnings():  # experimental since 2.8, stable in practice
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        copy = RetryHeartbeatStaleTrialCallback(max_retry=None, inherit_intermediate_values=True)
    copy(study, trial)


def _validate_best(trial: optuna.Trial, result: TrainResult,
                   ctx: TrialContext) -> FullValidation | None:
    """With the study's eval_subset: the trial's best model (chosen on the subset) scored on the
    whole validation split, which is the trial's value; None for a pruned trial (its value is
    its last report) and without eval_subset. A stop request cancels it: the trial is requeued
    and its resumption (no training left) validates again."""
    if ctx.config.eval_subset is None or result.stop_reason == PRUNED or result.best_path is None:
        return None
    rc = bool(trial.user_attrs.get("rc", False))  # the -rc it trained with
    try:
        full = validate_checkpoint(result.best_path, ctx.data, device=ctx.device, rc=rc,
                                   resident=ctx.resident, cancel=ctx.stop_requested)
    except StopTraining:
        requeue(trial)
        raise TrialInterrupted("interrupted in its whole-split validation; requeued") from None
    trial.set_user_attr("best_subset_auroc", result.best_metric)
    trial.set_user_attr("valid_rows", full.rows)
    return full


def _finish(trial: optuna.Trial, result: TrainResult, full: FullValidation | None) -> float:
    """The trial's end: its value is the best evaluation's mean valid AUROC, or with eval_subset
    its best model's on the whole split."""
    best, targets = result.best_metric, result.best_target_metric
    if full is not None:
        best, targets = full.metric, full.target_metric
    trial.set_user_attr("stop_reason", result.stop_reason)
    trial.set_user_attr("epochs_run", result.epochs_run)
    trial.set_user_attr("best_epoch", result.best_epoch)
    trial.set_user_attr("checkpoint", str(result.check_path) if result.check_path else None)
    trial.set_user_attr("best_checkpoint", str(result.best_path) if result.best_path else None)
    trial.set_user_attr(
        "best_target_auroc", [v if math.isfinite(v) else None for v in targets]
    )
    if result.stop_reason == PRUNED:
        trial.set_user_attr("pruned_at_epoch", result.epochs_run)
        raise optuna.TrialPruned(f"pruned after epoch {result.epochs_run}")
    if not math.isfinite(best):
        reason = "no epoch gave a finite validation AUROC"
        trial.set_user_attr("fail_reason", reason)
        raise TrialFailed(reason)
    return best


def release_memory() -> None:
    """Free what the finished trial left (model, optimiser, cached CUDA blocks)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
