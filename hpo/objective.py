"""A trial = suggest JobParams, train them through the trainer's hooks, return the best AUROC.

How a trial ends:
- COMPLETE: max_epochs or stagnant_t reached; the value is the best epoch's mean valid AUROC.
- PRUNED: the pruner stopped it (user attr `pruned_at_epoch`), or its architecture cannot be
  built for this sequence length (user attr `invalid_architecture`; never trained). Pruned
  rather than failed so that TPE learns to avoid that region.
- FAIL: the loss diverged (NaN/inf), CUDA ran out of memory, or the trainer refused the params;
  the reason is the user attr `fail_reason` and the worker goes on with the next trial.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy as sa
import torch

from basset.data import BassetData
from basset.errors import ArchitectureError, BassetError
from basset.hooks import EpochMetrics, StopTraining, TrainHooks, TrainOptions, TrainResult
from basset.model import check_architecture
from basset.params import JobParams
from basset.trainer import TrainingDiverged, train
from hpo import records
from hpo.config import StudyConfig
from hpo.space import suggest_params

TrainFn = Callable[..., TrainResult]
PRUNED = "pruned"


class TrialFailed(Exception):
    """This trial failed for a stored reason; the worker catches it and goes on."""


@dataclass
class TrialContext:
    """What every trial of one worker shares."""

    config: StudyConfig
    data: BassetData
    device: str
    run_dir: Path  # trial_<n>/ folders with checkpoints go here
    engine: sa.Engine  # the study database, for epoch rows
    worker: str = "0"
    train_fn: TrainFn | None = None  # None: basset.trainer.train; tests inject a fake
    on_trial_start: Callable[[], None] | None = None  # e.g. release the study lock


def make_objective(ctx: TrialContext) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        if ctx.on_trial_start is not None:
            ctx.on_trial_start()
        trial.set_user_attr("worker", ctx.worker)
        trial.set_user_attr("device", ctx.device)
        params = suggest_params(trial, ctx.config)
        trial.set_user_attr("params_table", params.to_table())
        try:
            check_architecture(params, ctx.data.seq_len)
        except ArchitectureError as err:
            trial.set_user_attr("invalid_architecture", str(err))
            raise optuna.TrialPruned(f"invalid architecture: {err}") from None
        try:
            result = _train(trial, params, ctx)
        finally:
            release_memory()
        return _finish(trial, result)

    return objective


def _train(trial: optuna.Trial, params: JobParams, ctx: TrialContext) -> TrainResult:
    trial_dir = ctx.run_dir / f"trial_{trial.number}"
    options = TrainOptions(
        max_epochs=ctx.config.max_epochs,
        stagnant_t=ctx.config.stagnant_t,
        rand=ctx.config.seed + trial.number,
        device=ctx.device,
        save_prefix=trial_dir / "model",
        quiet=True,
    )
    study_name = trial.study.study_name

    def on_epoch_end(m: EpochMetrics) -> None:
        records.write_epoch(ctx.engine, study_name, trial.number, m)
        if math.isfinite(m.valid_auroc):
            trial.report(m.valid_auroc, m.epoch)
            if trial.should_prune():
                raise StopTraining(PRUNED)

    train_fn = ctx.train_fn or train
    try:
        return train_fn(params, ctx.data, options=options, hooks=TrainHooks(on_epoch_end))
    except TrainingDiverged as err:
        reason = f"diverged: {err}"
    except torch.cuda.OutOfMemoryError as err:
        reason = f"CUDA out of memory on {ctx.device}: {str(err).splitlines()[0]}"
    except BassetError as err:
        reason = f"trainer refused the params: {err}"
    # Outside the except blocks, so the traceback (and the tensors its frames hold) is gone.
    trial.set_user_attr("fail_reason", reason)
    raise TrialFailed(reason)


def _finish(trial: optuna.Trial, result: TrainResult) -> float:
    trial.set_user_attr("stop_reason", result.stop_reason)
    trial.set_user_attr("epochs_run", result.epochs_run)
    trial.set_user_attr("best_epoch", result.best_epoch)
    trial.set_user_attr("checkpoint", str(result.check_path) if result.check_path else None)
    trial.set_user_attr("best_checkpoint", str(result.best_path) if result.best_path else None)
    trial.set_user_attr(
        "best_target_auroc", [v if math.isfinite(v) else None for v in result.best_target_auroc]
    )
    if result.stop_reason == PRUNED:
        trial.set_user_attr("pruned_at_epoch", result.epochs_run)
        raise optuna.TrialPruned(f"pruned after epoch {result.epochs_run}")
    if not math.isfinite(result.best_metric):
        reason = "no epoch gave a finite validation AUROC"
        trial.set_user_attr("fail_reason", reason)
        raise TrialFailed(reason)
    return result.best_metric


def release_memory() -> None:
    """Free what the finished trial left (model, optimiser, cached CUDA blocks)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
