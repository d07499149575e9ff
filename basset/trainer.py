"""train(params, data, options=..., hooks=...) -> TrainResult: Basset's training loop, fast.

Semantics follow basset_train.lua (reference/basset.md §1.2-1.4): BCE summed over the batch,
RMSprop with alpha = momentum (or Adam), max-norm after every step, mean validation AUROC for model
selection and for `stagnant_t`, -rc and -drop_rate. Unlike Basset we shuffle every epoch (unless
legacy_order) and a restart continues exactly (epoch, best, optimiser, learning rate, RNGs).

Speed: the data stay on the device as uint8 codes when they fit and are expanded to one-hot per
batch there; the loss is accumulated on the device (one host sync per epoch); multi-tensor
(foreach) optimiser steps; on CUDA bf16 autocast and the whole step replayed from a CUDA graph
(basset.fast); torch.compile on request.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
import weakref
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from basset.checkpoint import (
    FORMAT,
    VERSION,
    copy_seed_layers,
    load_model,
    read_checkpoint,
    restore_rng,
    rng_state,
    save_checkpoint,
    seeded_params,
)
from basset.data import BassetData, Split, codes_to_onehot
from basset.device import resolve_device, set_cpu_threads
from basset.errors import DataError
from basset.fast import GraphedSteps, set_capturable, train_autocast
from basset.fileio import write_text_atomic
from basset.api import EpochMetrics, StopTraining, TrainHooks, TrainOptions, TrainResult
from basset.metrics import binary_metrics, nan_mean, r2_per_target, single_class_targets
from basset.model import BassetNet, build_model, check_architecture, max_norm_, norm_constrained
from basset.params import JobParams, parse_params
from basset.predict import predict_codes, reverse_complement

log = logging.getLogger(__name__)

DROP_RATE_THRESHOLD = 1e-4  # relative train-loss improvement below which -drop_rate acts
DROP_RATE_FACTOR = 2 / 3
EVAL_BATCH = 1024
DEVICE_DATA_FRACTION = 0.5  # data go to the GPU when they take at most this share of free memory
TSV_COLUMNS = (
    "epoch",
    "train_loss",
    "valid_loss",
    "valid_auroc",
    "valid_auprc",
    "seconds",
    "learning_rate",
)


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite (not a user error: the HPO trial fails)."""


@dataclass
class _RunState:
    """What a restart must get back besides the model and optimiser."""

    epoch: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0
    prev_train_loss: float | None = None
    history: list[EpochMetrics] = field(default_factory=list)


@dataclass
class _Resident:
    """A split's codes and targets, on the device when they fit (else on the host)."""

    codes: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def of(cls, split: Split, device: torch.device) -> _Resident:
        """The split on `device`, copied to a GPU once per process: an HPO worker's trials all
        train on the data set it loaded, so later trials reuse the first one's device copy."""
        if device.type == "cpu":
            return cls._copy(split, device)  # shares the host arrays: nothing to keep
        key = (id(split.seqs), id(split.targets), str(device))
        if key not in _RESIDENT:
            _RESIDENT[key] = cls._copy(split, device)
            # Forget the copy together with the host arrays it was made from.
            weakref.finalize(split.seqs, _RESIDENT.pop, key, None)
        return _RESIDENT[key]

    @classmethod
    def _copy(cls, split: Split, device: torch.device) -> _Resident:
        codes = torch.from_numpy(np.ascontiguousarray(split.seqs, dtype=np.uint8))
        targets = torch.from_numpy(np.ascontiguousarray(split.targets, dtype=np.float32))
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            if codes.nbytes + targets.nbytes <= DEVICE_DATA_FRACTION * free:
                return cls(codes.to(device), targets.to(device))
            log.info("data set too large for the GPU: batches are copied from pinned host memory")
            return cls(codes.pin_memory(), targets.pin_memory())
        return cls(codes, targets)


_RESIDENT: dict[tuple[int, int, str], _Resident] = {}


def make_optimizer(params: JobParams, parameters: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """RMSprop with alpha = momentum (Basset's meaning) or Adam(beta1, beta2).

    foreach: one multi-tensor kernel per operation instead of a Python loop over the tensors
    (torch picks it by itself only on CUDA). Fused kernels are left out: RMSprop has none, and
    device-specific optimiser flags would travel in checkpoints to other devices.
    """
    if params.optimization == "adam":
        return torch.optim.Adam(
            parameters, lr=params.learning_rate, betas=(params.beta1, params.beta2), eps=1e-8,
            foreach=True,
        )
    return torch.optim.RMSprop(
        parameters, lr=params.learning_rate, alpha=params.momentum, eps=1e-8, foreach=True
    )


def _loss(logits: torch.Tensor, targets: torch.Tensor, target_type: str) -> torch.Tensor:
    """Summed over batch and targets, as Basset (sizeAverage = false)."""
    if target_type == "binary":
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
    outputs = torch.relu(logits) if target_type == "positive" else logits
    return F.mse_loss(outputs, targets, reduction="sum")


def _output_loss(outputs: torch.Tensor, targets: torch.Tensor, target_type: str) -> torch.Tensor:
    """The same loss from activated (possibly strand-averaged) outputs."""
    if target_type == "binary":
        return F.binary_cross_entropy(outputs, targets, reduction="sum")
    return F.mse_loss(outputs, targets, reduction="sum")


def _penalty(model: torch.nn.Module, params: JobParams) -> torch.Tensor | None:
    """coef_l2 / coef_l1 on every parameter (Basset added them to loss and gradient)."""
    if not params.coef_l2 and not params.coef_l1:
        return None
    trained = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros((), device=trained[0].device)
    if params.coef_l2:
        total = total + 0.5 * params.coef_l2 * sum(p.pow(2).sum() for p in trained)
    if params.coef_l1:
        total = total + params.coef_l1 * sum(p.abs().sum() for p in trained)
    return total


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


def _epoch_line(m: EpochMetrics, target_type: str, rate_drop: bool) -> str:
    shown = f"{m.seconds / 60:3.0f}m" if m.seconds >= 600 else f"{m.seconds:3.0f}s"
    metric = "AUC" if target_type == "binary" else "R2"
    line = (
        f"Epoch #{m.epoch:3d}   train loss = {m.train_loss:7.3f}, valid loss = {m.valid_loss:7.3f}, "
        f"{metric} = {m.valid_auroc:.4f}, time = {shown}"
    )
    if m.is_best:
        line += " best!"
    if rate_drop:
        line += ", rate drop"
    return line


def _write_metrics_tsv(path: Path, history: list[EpochMetrics]) -> None:
    rows = ["\t".join(TSV_COLUMNS)]
    for m in history:
        rows.append("\t".join(str(getattr(m, column)) for column in TSV_COLUMNS))
    write_text_atomic(path, "\n".join(rows) + "\n")


class _Trainer:
    """One run: the model, optimiser, data on the device and the loop state."""

    def __init__(self, params: JobParams, data: BassetData, options: TrainOptions) -> None:
        self.options = options
        self.device = resolve_device(options.device)
        if self.device.type == "cpu":
            set_cpu_threads()
        self.data = data
        if len(data.valid) == 0:
            raise DataError("the data set has no validation sequences")
        params.validate()
        if params.batch_size > len(data.train):
            raise DataError(
                f"batch_size {params.batch_size} is larger than the {len(data.train)} training "
                "sequences (training drops partial batches)"
            )
        torch.manual_seed(options.rand)
        self.generator = torch.Generator().manual_seed(options.rand)
        seed = None
        if options.seed_model is not None:
            seed = load_model(options.seed_model)
            if seed.seq_len != data.seq_len:
                raise DataError(
                    f"the seed model takes {seed.seq_len} bp sequences, the data have {data.seq_len}"
                )
            params = seeded_params(params, seed.params)
        self.state = _RunState()
        checkpoint = None
        if options.restart is not None:
            checkpoint = read_checkpoint(options.restart, self.device)
            params = self._restart_params(checkpoint, params)
        check_architecture(params, data.seq_len)
        self.params = params
        self.model: BassetNet = build_model(params, data.seq_len, data.num_targets).to(self.device)
        if seed is not None:
            copied = copy_seed_layers(self.model, seed.model.to(self.device))
            log.info("seeded the convolution%s layers from %s", " and hidden" if copied else "",
                     options.seed_model)
        if options.freeze_conv:
            self.model.conv.requires_grad_(False)
        trained = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(params, trained)
        self.constrained = norm_constrained(self.model)
        if checkpoint is not None:
            self._restore(checkpoint)
        self.train_data = _Resident.of(data.train, self.device)
        self.valid_data = _Resident.of(data.valid, self.device)
        # (5, 4): one-hot rows of the codes, built once (a per-batch host->device copy otherwise)
        self.onehot_table = codes_to_onehot(torch.arange(5, device=self.device)[None])[0].T
        self.forward = torch.compile(self.model) if options.compile else self.model
        self.steps = self._step
        if (self.device.type == "cuda" and options.cuda_graphs
                and self.train_data.codes.device == self.device):
            self.steps = GraphedSteps(self._step, self.optimizer, params.batch_size, self.device)
        self.single_class = (
            single_class_targets(data.valid.targets) if params.target_type == "binary" else []
        )
        if self.single_class:
            labels = ", ".join(data.target_labels[t] for t in self.single_class[:10])
            more = "" if len(self.single_class) <= 10 else ", ..."
            log.warning(
                "%d of %d targets have one class only in validation and are left out of the "
                "mean AUROC: %s%s",
                len(self.single_class),
                data.num_targets,
                labels,
                more,
            )

    def _restart_params(self, checkpoint: dict[str, Any], params: JobParams) -> JobParams:
        saved = parse_params(checkpoint["params"], f"{self.options.restart} (params)")
        if saved != params:
            log.warning("restart: using the params saved in %s", self.options.restart)
        if int(checkpoint["seq_len"]) != self.data.seq_len or list(
            checkpoint["target_labels"]
        ) != list(self.data.target_labels):
            raise DataError(
                f"{self.options.restart} was trained on other data "
                "(sequence length or target labels differ)"
            )
        return saved

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.state = _RunState(
                epoch=int(checkpoint["epoch"]),
                best_metric=float(checkpoint["best_metric"]),
                best_epoch=int(checkpoint["best_epoch"]),
                prev_train_loss=checkpoint["prev_train_loss"],
                history=[EpochMetrics(**m) for m in checkpoint["history"]],
            )
            restore_rng(checkpoint["rng"], self.generator, self.device)
            set_capturable(self.optimizer, False)  # saved by a graphed run, maybe elsewhere
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise DataError(f"{self.options.restart}: damaged checkpoint ({err})") from None
        log.info("restarting after epoch %d (best %.4f at epoch %d)", self.state.epoch,
                 self.state.best_metric, self.state.best_epoch)

    @property
    def learning_rate(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def train_epoch(self, epoch: int, progress: Progress | None) -> tuple[float, int]:
        """One pass over the training set; (loss per sequence, sequences trained)."""
        self.model.train()
        if self.options.freeze_conv:
            self.model.conv.eval()  # frozen conv layers keep their batch-norm statistics too
        n, batch = len(self.train_data.codes), self.params.batch_size
        num_batches = n // batch
        order = (
            torch.arange(n)
            if self.options.legacy_order
            else torch.randperm(n, generator=self.generator)
        ).to(self.train_data.codes.device)
        rc = self.options.rc and epoch % 2 == 0
        total = torch.zeros((), device=self.device)
        task = progress.add_task(f"epoch {epoch}", total=num_batches) if progress else None
        for b in range(num_batches):
            total += self.steps(order[b * batch : (b + 1) * batch], rc)
            if progress is not None and task is not None:
                progress.advance(task)
        if progress is not None and task is not None:
            progress.remove_task(task)
        trained = num_batches * batch
        return float(total.item()) / trained, trained

    def _step(self, index: torch.Tensor, rc: bool) -> torch.Tensor:
        """One optimiser step on the training sequences `index`; their summed loss (on the
        device, detached). No host sync: GraphedSteps captures exactly this."""
        codes, targets = self.train_data.codes, self.train_data.targets
        x = self.onehot_table[codes[index].to(self.device, non_blocking=True).long()]
        x = x.transpose(1, 2)  # (N, L, 4) -> (N, 4, L), as codes_to_onehot
        y = targets[index].to(self.device, non_blocking=True)
        if rc:
            x = reverse_complement(x)
        with train_autocast(self.device, self.options.amp):
            logits = self.forward(x)
        loss = _loss(logits.float(), y, self.params.target_type)
        penalty = _penalty(self.model, self.params)
        if penalty is not None:
            loss = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        max_norm_(self.constrained, self.params.weight_norm)
        return loss.detach()

    def evaluate(self) -> tuple[float, np.ndarray, np.ndarray]:
        """(valid loss per sequence, per-target AUROC or R2, per-target AUPRC or NaN)."""
        outputs = predict_codes(
            self.model,
            self.valid_data.codes,
            batch_size=max(EVAL_BATCH, self.params.batch_size),
            rc=self.options.rc,
            amp=self.options.amp,
        )
        targets = self.valid_data.targets.to(self.device)
        loss = float(_output_loss(outputs, targets, self.params.target_type).item()) / len(targets)
        preds, truth = outputs.cpu().numpy(), self.data.valid.targets
        if self.params.target_type == "binary":
            auroc, auprc = binary_metrics(truth, preds)
            return loss, auroc, auprc
        return loss, r2_per_target(truth, preds), np.full(truth.shape[1], np.nan)

    def checkpoint(self) -> dict[str, Any]:
        s = self.state
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": s.epoch,
            "best_metric": s.best_metric,
            "best_epoch": s.best_epoch,
            "stagnant_epochs": s.epoch - s.best_epoch,
            "prev_train_loss": s.prev_train_loss,
            "learning_rate": self.learning_rate,
            "rng": rng_state(self.generator, self.device),
            "params": self.params.to_table(),
            "target_labels": list(self.data.target_labels),
            "seq_len": self.data.seq_len,
            "history": [dataclasses.asdict(m) for m in s.history],
        }


def _paths(prefix: Path | None) -> tuple[Path | None, Path | None, Path | None]:
    if prefix is None:
        return None, None, None
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    return (
        Path(f"{prefix}_check.pt"),
        Path(f"{prefix}_best.pt"),
        Path(f"{prefix}_metrics.tsv"),
    )


def train(
    params: JobParams,
    data: BassetData,
    *,
    options: TrainOptions | None = None,
    hooks: TrainHooks | None = None,
) -> TrainResult:
    """Train until max_epochs, stagnant_t epochs without a new best, or a hook's StopTraining."""
    options = options or TrainOptions()
    hooks = hooks or TrainHooks()
    run = _Trainer(params, data, options)
    state = run.state
    check_path, best_path, tsv_path = _paths(options.save_prefix)
    show_progress = not options.quiet and sys.stderr.isatty()
    stop_reason = _stop_reason(state.epoch + 1, state.best_epoch, options)
    while stop_reason is None:
        epoch = state.epoch + 1
        start = time.perf_counter()
        with _progress(show_progress) as progress:
            train_loss, trained = run.train_epoch(epoch, progress)
        train_seconds = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"the training loss is {train_loss} at epoch {epoch}")
        valid_loss, target_auroc, target_auprc = run.evaluate()
        metric = nan_mean(target_auroc)
        is_best = metric > state.best_metric  # False for NaN
        if is_best:
            state.best_metric, state.best_epoch = metric, epoch
        learning_rate = run.learning_rate
        rate_drop = (
            options.drop_rate
            and state.prev_train_loss is not None
            and (state.prev_train_loss - train_loss) / abs(state.prev_train_loss)
            < DROP_RATE_THRESHOLD
        )
        if rate_drop:
            for group in run.optimizer.param_groups:
                group["lr"] *= DROP_RATE_FACTOR
        state.prev_train_loss = train_loss
        metrics = EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            valid_loss=valid_loss,
            valid_auroc=metric,
            valid_auprc=nan_mean(target_auprc),
            target_auroc=[float(v) for v in target_auroc],
            target_auprc=[float(v) for v in target_auprc],
            seconds=time.perf_counter() - start,
            seqs_per_sec=trained / train_seconds,
            learning_rate=learning_rate,
            is_best=is_best,
            device=str(run.device),
        )
        state.epoch = epoch
        state.history.append(metrics)
        if check_path is not None and best_path is not None and tsv_path is not None:
            checkpoint = run.checkpoint()
            save_checkpoint(check_path, checkpoint)
            if is_best:
                save_checkpoint(best_path, checkpoint)
            _write_metrics_tsv(tsv_path, state.history)
        log.info(_epoch_line(metrics, run.params.target_type, bool(rate_drop)))
        stop_reason = _stop_reason(epoch + 1, state.best_epoch, options)
        if hooks.on_epoch_end is not None:
            try:
                hooks.on_epoch_end(metrics)
            except StopTraining as stop:
                stop_reason = stop.reason
                log.info("stopped after epoch %d: %s", epoch, stop.reason)
    best = next((m for m in state.history if m.epoch == state.best_epoch), None)
    return TrainResult(
        best_metric=state.best_metric,
        best_epoch=state.best_epoch,
        epochs_run=state.epoch,
        stop_reason=stop_reason,
        history=state.history,
        best_target_auroc=best.target_auroc if best else [],
        check_path=check_path,
        best_path=best_path if best_path is not None and best_path.exists() else None,
    )


def _stop_reason(next_epoch: int, best_epoch: int, options: TrainOptions) -> str | None:
    """Basset's loop condition: epoch <= max_epochs and epoch - epoch_best <= stagnant_t.

    The first epoch always runs (even with stagnant_t 0).
    """
    if next_epoch > options.max_epochs:
        return "max_epochs"
    if next_epoch > 1 and next_epoch - best_epoch > options.stagnant_t:
        return "stagnant"
    return None
