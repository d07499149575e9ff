"""train(params, data, options=..., hooks=...) -> TrainResult: Basset's training loop, fast.

Semantics follow basset_train.lua (docs/basset-semantics.md §2-3): BCE summed over the batch,
RMSprop with alpha = momentum (or Adam), max-norm after every step, mean validation AUROC for model
selection and for `stagnant_t`, -rc and -drop_rate. Unlike Basset we shuffle every epoch (unless
legacy_order) and a restart continues exactly (epoch, best, optimiser, learning rate, RNGs).

Loss and optimiser: basset.training.optim; checks and setup: basset.training.run_setup.

Speed: the data stay on the device as uint8 codes when they fit
(basset.training.resident.ResidentData) and are expanded to one-hot per batch there; the loss
is accumulated on the device (one host sync per evaluation); multi-tensor (foreach) optimiser
steps; on CUDA bf16 autocast and the whole step replayed
from a CUDA graph (basset.training.cuda_graphs); torch.compile on request.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from basset.data.h5read import BassetData
from basset.device import autocast, resolve_device, set_cpu_threads
from basset.errors import DataError
from basset.nn.model import (
    BassetNet,
    build_model,
    max_norm_,
    norm_constrained,
    set_dropout_generator,
)
from basset.params import JobParams
from basset.training.batches import BatchStream
from basset.training.checkpoint import (
    Checkpoint,
    LoadedModel,
    TrainingState,
    copy_seed_layers,
    read_checkpoint,
    restore_rng,
    rng_state,
)
from basset.training.cuda_graphs import GraphedSteps, set_capturable
from basset.training.metrics import nan_mean
from basset.training.optim import make_optimizer, summed_loss, weight_penalty
from basset.training.predict import predict_codes, reverse_complement
from basset.training.resident import ResidentData, batch_targets, codes_to_onehot
from basset.training.run_setup import check_fit, load_seed, on_device, run_params, warn_single_class
from basset.training.runlog import RunFiles, epoch_line
from basset.training.seam import (
    EpochMetrics,
    StopTraining,
    TrainHooks,
    TrainOptions,
    TrainProgress,
    TrainResult,
)
from basset.training.validation import EVAL_BATCH, score_outputs, subset_rows

log = logging.getLogger(__name__)

DROP_RATE_THRESHOLD = 1e-4  # relative train-loss improvement below which -drop_rate acts
DROP_RATE_FACTOR = 2 / 3


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (not a user error: the HPO trial fails)."""


def train(
    params: JobParams,
    data: BassetData,
    *,
    options: TrainOptions | None = None,
    hooks: TrainHooks | None = None,
    resident: ResidentData | None = None,
) -> TrainResult:
    """Train until max_epochs, stagnant_t evaluations without a new best, or a hook's
    StopTraining. One evaluation per epoch, or per `options.eval_every` training sequences.

    `resident`: `data` already on the options' device (built once by a caller that trains many
    times on one data set); by default train() builds its own.
    """
    options = options or TrainOptions()
    hooks = hooks or TrainHooks()
    run = _Run(params, data, options, resident)
    files = RunFiles.at(options.save_prefix)
    stop = stop_reason(run.state.epoch + 1, run.state.best_epoch, options)
    while stop is None:
        show = not options.quiet and sys.stderr.isatty()
        metrics, rate_drop = run.interval(show, hooks.on_progress)
        stop = metrics.stop_reason = stop_reason(metrics.epoch + 1, run.state.best_epoch, options)
        if files is not None:
            files.save(run.checkpoint(), metrics.is_best)
        log.info(epoch_line(metrics, run.params.target_type, rate_drop,
                            options.eval_every is not None))
        stop = _call_hook(hooks, metrics) or stop
    return run.result(stop, files)


def stop_reason(next_epoch: int, best_epoch: int, options: TrainOptions) -> str | None:
    """Basset's loop condition: epoch <= max_epochs and epoch - epoch_best <= stagnant_t.

    The first epoch always runs (even with stagnant_t 0).
    """
    if next_epoch > options.max_epochs:
        return "max_epochs"
    if next_epoch > 1 and next_epoch - best_epoch > options.stagnant_t:
        return "stagnant"
    return None


def loss_stalled(prev_loss: float | None, loss: float) -> bool:
    """-drop_rate's test: the train loss improved by less than DROP_RATE_THRESHOLD of the
    previous one. Multiplied out rather than divided, so that a previous loss of 0 needs no
    special case (a loss that rises from 0 has stalled; one that stays at 0 has not, as in
    Basset, where 0/0 compares false)."""
    if prev_loss is None:
        return False
    return prev_loss - loss < DROP_RATE_THRESHOLD * abs(prev_loss)


def _call_hook(hooks: TrainHooks, metrics: EpochMetrics) -> str | None:
    """Run the epoch hook; the reason of the StopTraining it raised, if any."""
    if hooks.on_epoch_end is None:
        return None
    try:
        hooks.on_epoch_end(metrics)
    except StopTraining as stop:
        log.info("stopped after evaluation %d: %s", metrics.epoch, stop.reason)
        return stop.reason
    return None


def _progress(enabled: bool) -> Progress | nullcontext[None]:
    if not enabled:
        return nullcontext()
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    )


class _Run:
    """One run: the model, optimiser and step function, the data on the device, the loop state."""

    def __init__(self, params: JobParams, data: BassetData, options: TrainOptions,
                 resident: ResidentData | None) -> None:
        self.options, self.data = options, data
        self.device = resolve_device(options.device)
        if self.device.type == "cpu":
            set_cpu_threads()
        # The run's own random state: two runs in one process (threads) stay independent.
        self.generator = torch.Generator().manual_seed(options.rand)
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                torch.cuda.manual_seed(options.rand)  # dropout on the device
        seed = load_seed(options.seed_model, data)
        restart = None if options.restart is None else read_checkpoint(options.restart, self.device)
        self.params = run_params(params, seed, restart, data, options)
        check_fit(self.params, data)  # a restart's own params, not the job's
        self.model, self.optimizer = self._build(seed)
        self.state = TrainingState() if restart is None else self._restore(restart)
        self.resident = on_device(resident, data, self.device)
        self.train_data, self.valid_data = self.resident.train, self.resident.valid
        self.eval_codes, self.eval_targets = self._eval_rows()
        self.batches, self.interval_steps = self._batches(restart)
        # (5, 4): one-hot rows of the codes, built once (a per-batch host->device copy otherwise)
        self.onehot_table = codes_to_onehot(torch.arange(5, device=self.device)[None])[0].T
        self.forward = torch.compile(self.model) if options.compile else self.model
        self.steps = self._step
        if (self.device.type == "cuda" and options.cuda_graphs
                and self.train_data.codes.device == self.device):
            self.steps = GraphedSteps(self._step, self.optimizer, self.params.batch_size,
                                      self.device)
        if self.params.target_type == "binary":
            warn_single_class(data)

    def _batches(self, restart: Checkpoint | None) -> tuple[BatchStream, int]:
        """The training batches from where the run stands, and the steps between evaluations."""
        n, batch = len(self.train_data.codes), self.params.batch_size
        per_epoch = n // batch
        steps = self.state.steps
        stream = BatchStream(
            n, batch, self.generator, legacy_order=self.options.legacy_order,
            device=self.train_data.codes.device,
            steps=self.state.epoch * per_epoch if steps is None else steps,
            rng=None if restart is None else restart.rng,
        )
        every = self.options.eval_every
        return stream, per_epoch if every is None else max(1, every // batch)

    def _eval_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What every evaluation scores: the validation split, or its fixed subset."""
        valid = self.valid_data
        rows = subset_rows(len(valid.codes), self.options.valid_subset)
        if rows is None:
            return valid.codes, valid.targets
        index = torch.from_numpy(rows).to(valid.codes.device)
        log.info("evaluations score %d of the %d validation sequences (a fixed subset)",
                 len(rows), len(valid.codes))
        return valid.codes[index], valid.targets[index]

    def _build(self, seed: LoadedModel | None) -> tuple[BassetNet, torch.optim.Optimizer]:
        model = build_model(self.params, self.data.seq_len, self.data.num_targets,
                            generator=self.generator).to(self.device)
        if self.device.type == "cpu":
            set_dropout_generator(model, self.generator)
        if seed is not None:
            copied = copy_seed_layers(model, seed.model.to(self.device))
            log.info("seeded the convolution%s layers from %s", " and hidden" if copied else "",
                     self.options.seed_model)
        if self.options.freeze_conv:
            model.conv.requires_grad_(False)
        self.constrained = norm_constrained(model)
        trained = [p for p in model.parameters() if p.requires_grad]
        return model, make_optimizer(self.params, trained)

    def _restore(self, checkpoint: Checkpoint) -> TrainingState:
        source = self.options.restart
        if checkpoint.optimizer is None or checkpoint.rng is None:
            raise DataError(f"{source} holds a model only, no training state to restart from")
        try:
            self.model.load_state_dict(checkpoint.model)
            self.optimizer.load_state_dict(checkpoint.optimizer)
            restore_rng(checkpoint.rng, self.generator, self.device)
            set_capturable(self.optimizer, False)  # saved by a graphed run, maybe elsewhere
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise DataError(f"{source}: damaged checkpoint ({err})") from None
        state = checkpoint.state
        log.info("restarting after epoch %d (best %.4f at epoch %d)", state.epoch,
                 state.best_metric, state.best_epoch)
        return state

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def interval(self, show_progress: bool,
                 on_progress: Callable[[TrainProgress], None] | None) -> tuple[EpochMetrics, bool]:
        """Train up to the next evaluation and validate; record it (best, -drop_rate).
        (metrics, rate dropped)"""
        state, number = self.state, self.state.epoch + 1
        start = time.perf_counter()
        with _progress(show_progress) as progress:
            train_loss, trained = self.train_interval(number, progress, on_progress)
        train_seconds = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"the training loss is {train_loss} at epoch {number}")
        valid_loss, target_metric, target_auprc = self.evaluate()
        metric = nan_mean(target_metric)
        is_best = metric > state.best_metric  # False for NaN
        if is_best:
            state.best_metric, state.best_epoch = metric, number
        learning_rate = self.learning_rate
        rate_drop = self.options.drop_rate and loss_stalled(state.prev_train_loss, train_loss)
        if rate_drop:
            for group in self.optimizer.param_groups:
                group["lr"] *= DROP_RATE_FACTOR
        state.prev_train_loss = train_loss
        metrics = EpochMetrics(
            epoch=number,
            train_loss=train_loss,
            valid_loss=valid_loss,
            valid_metric=metric,
            valid_auprc=nan_mean(target_auprc),
            target_metric=[float(v) for v in target_metric],
            target_auprc=[float(v) for v in target_auprc],
            seconds=time.perf_counter() - start,
            seqs_per_sec=trained / train_seconds,
            learning_rate=learning_rate,
            is_best=is_best,
            device=str(self.device),
            sequences=self.batches.sequences,
        )
        state.epoch, state.steps = number, self.batches.steps
        state.history.append(metrics)
        return metrics, rate_drop

    def train_interval(self, number: int, progress: Progress | None,
                       on_progress: Callable[[TrainProgress], None] | None) -> tuple[float, int]:
        """The steps up to the next evaluation (across epochs when an interval is longer
        than what remains of one); (loss per sequence, sequences trained)."""
        self.model.train()
        if self.options.freeze_conv:
            self.model.conv.eval()  # frozen conv layers keep their batch-norm statistics too
        steps = self.interval_steps
        total = torch.zeros((), device=self.device)
        label = (f"epoch {self.batches.epoch}" if self.options.eval_every is None
                 else f"evaluation {number}")
        task = progress.add_task(label, total=steps) if progress else None
        for done in range(1, steps + 1):
            index, epoch = self.batches.next()
            total += self.steps(index, self.options.rc and epoch % 2 == 0)
            if progress is not None and task is not None:
                progress.advance(task)
            if on_progress is not None:
                on_progress(self.where((steps - done) * self.params.batch_size))
        if progress is not None and task is not None:
            progress.remove_task(task)
        trained = steps * self.params.batch_size
        return float(total.item()) / trained, trained

    def where(self, to_next_eval: int) -> TrainProgress:
        """Where the last step left training (its epoch, even when it was the epoch's last)."""
        batches, batch = self.batches, self.params.batch_size
        last = batches.steps - 1
        return TrainProgress(
            epoch=last // batches.per_epoch + 1,
            epoch_done=(last % batches.per_epoch + 1) * batch,
            epoch_size=batches.per_epoch * batch,
            to_next_eval=to_next_eval,
            sequences=batches.sequences,
        )

    def _step(self, index: torch.Tensor, rc: bool) -> torch.Tensor:
        """One optimiser step on the training sequences `index`; their summed loss (on the
        device, detached). No host sync: GraphedSteps captures exactly this."""
        codes, targets = self.train_data.codes, self.train_data.targets
        x = self.onehot_table[codes[index].to(self.device, non_blocking=True).long()]
        x = x.transpose(1, 2)  # (N, L, 4) -> (N, 4, L), as codes_to_onehot
        y = batch_targets(targets, index, self.device)
        if rc:
            x = reverse_complement(x)
        with autocast(self.device, self.options.amp):
            logits = self.forward(x)
        loss = summed_loss(logits.float(), y, self.params.target_type)
        penalty = weight_penalty(self.model, self.params)
        if penalty is not None:
            loss = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        max_norm_(self.constrained, self.params.weight_norm)
        return loss.detach()

    def evaluate(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(valid loss per sequence, per-target AUROC or R2, per-target AUPRC or NaN) on the
        evaluations' rows: the validation split, or its fixed subset (options.valid_subset)."""
        outputs = predict_codes(
            self.model,
            self.eval_codes,
            batch_size=max(EVAL_BATCH, self.params.batch_size),
            rc=self.options.rc,
            amp=self.options.amp,
        )
        return score_outputs(outputs, self.eval_targets, self.params.target_type)

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(
            model=self.model.state_dict(),
            params=self.params,
            target_labels=list(self.data.target_labels),
            seq_len=self.data.seq_len,
            optimizer=self.optimizer.state_dict(),
            rng=rng_state(self.generator, self.device, self.batches.mid_epoch_state()),
            state=self.state,
        )

    def result(self, stop: str, files: RunFiles | None) -> TrainResult:
        state = self.state
        best = next((m for m in state.history if m.epoch == state.best_epoch), None)
        return TrainResult(
            best_metric=state.best_metric,
            best_epoch=state.best_epoch,
            epochs_run=state.epoch,
            stop_reason=stop,
            history=state.history,
            best_target_metric=best.target_metric if best else [],
            check_path=files.check if files else None,
            best_path=files.best if files and files.best.exists() else None,
        )
