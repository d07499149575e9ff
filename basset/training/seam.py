"""The seam between the trainer and whatever drives it (the HPO service, a notebook).

`basset.train(params, data, options=..., hooks=...)` calls `hooks.on_epoch_end(metrics)` after
every evaluation (every epoch, or every `options.eval_every` training sequences); a hook raises
`StopTraining(reason)` to end the run cleanly (checkpoint written, result returned with that
reason). `metrics.stop_reason` tells the hook whether the trainer's own rules (max_epochs,
stagnant_t) end the run after this evaluation. `hooks.on_progress` hears of every training step
(sequences done in the epoch, to the next evaluation). Nothing here knows about Optuna.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class StopTraining(Exception):
    """Raised by a hook to stop training at this evaluation (e.g. the HPO pruner)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class EpochMetrics:
    """What one evaluation produced: after an epoch, or with TrainOptions.eval_every after every
    interval of that many training sequences (then `epoch` numbers the intervals).

    The validation metric is AUROC for binary targets and R2 for continuous or positive ones (the
    files and the study database call it valid_auroc, as Basset did). Means leave out the targets
    with one class only in validation (NaN per target); AUPRC is NaN for non-binary targets.
    """

    epoch: int  # 1-based, continues across restarts: epochs, or eval_every intervals
    train_loss: float  # per sequence, summed over targets (Basset's printed loss)
    valid_loss: float
    valid_metric: float  # mean over targets: AUROC, or R2
    valid_auprc: float
    target_metric: list[float]  # per target: AUROC, or R2
    target_auprc: list[float]
    seconds: float
    seqs_per_sec: float
    learning_rate: float
    is_best: bool
    device: str = "cpu"
    # The trainer's own verdict before the hooks run: "max_epochs" or "stagnant" when this epoch
    # is the run's last by its stop rules (a hook may still stop it earlier), None when another
    # epoch follows unless a hook stops the run.
    stop_reason: str | None = None
    sequences: int = 0  # training sequences seen so far, this run and the runs it restarted


@dataclass
class TrainProgress:
    """Where training stands after a step (TrainHooks.on_progress)."""

    epoch: int  # the pass over the training set under way (1-based)
    epoch_done: int  # training sequences of that pass done
    epoch_size: int  # training sequences a pass trains (whole batches)
    to_next_eval: int  # training sequences until the next evaluation
    sequences: int  # training sequences seen so far


@dataclass
class TrainHooks:
    """Plain callables the trainer calls; any may be None."""

    on_epoch_end: Callable[[EpochMetrics], None] | None = None  # after every evaluation
    on_progress: Callable[[TrainProgress], None] | None = None  # after every training step


@dataclass
class TrainOptions:
    """How to train (as opposed to what: that is JobParams)."""

    # With eval_every, max_epochs and stagnant_t count evaluations (intervals), not epochs.
    max_epochs: int = 1000
    stagnant_t: int = 10
    # Validate, checkpoint and call the hooks every this many training sequences (rounded down
    # to whole batches, at least one) instead of every epoch; intervals run across epochs.
    eval_every: int | None = None
    # Score every evaluation on this many validation sequences, a fixed subset drawn once
    # (basset.training.validation.subset_rows: the same rows in every run); None: all of them.
    # The best evaluation, stagnant_t and the hooks then see the subset's metric; score the
    # best model on the whole split afterwards with validate_checkpoint.
    valid_subset: int | None = None
    rand: int = 1  # seed of every RNG
    rc: bool = False  # reverse-complement augmentation, strand-averaged validation
    drop_rate: bool = False  # lr x 2/3 when the train loss improves by < 1e-4 (relative)
    legacy_order: bool = False  # Basset's file order instead of a shuffle each epoch
    device: str = "cpu"  # "cpu", "cuda", "cuda:N"
    amp: bool = True  # bf16 autocast on CUDA (ignored on the CPU)
    cuda_graphs: bool = (
        True  # CUDA: replay each training step from a CUDA graph (basset.training.cuda_graphs)
    )
    compile: bool = False  # torch.compile the model (pays on CUDA for long runs; not on the CPU)
    save_prefix: Path | None = None  # writes PREFIX_check.pt, PREFIX_best.pt, PREFIX_metrics.tsv
    restart: Path | None = None  # a PREFIX_check.pt to continue exactly
    seed_model: Path | None = None  # its conv layers (hidden too if the same size) start this run
    freeze_conv: bool = False  # with seed_model: keep the convolution layers fixed
    quiet: bool = False  # no progress bars


@dataclass
class TrainResult:
    """How a run ended."""

    best_metric: float  # best valid_metric: mean validation AUROC, or R2
    best_epoch: int
    epochs_run: int  # last epoch completed (counts epochs before a restart too)
    stop_reason: str  # "max_epochs", "stagnant", or the StopTraining reason
    history: list[EpochMetrics] = field(default_factory=list)
    best_target_metric: list[float] = field(default_factory=list)  # the best epoch's
    check_path: Path | None = None
    best_path: Path | None = None
