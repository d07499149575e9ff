"""Validation: the rows an evaluation scores and a model's scores on them.

With `TrainOptions.valid_subset` every evaluation during training scores a fixed subset of the
validation split (`subset_rows`: the same rows in every run, trial and host of a data set, so
evaluations compare), and the run's best model is scored once on the whole split at the end
(`validate_checkpoint`). Without it every evaluation scores the whole split, as Basset did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from basset.data.h5read import BassetData
from basset.device import resolve_device
from basset.training.checkpoint import load_model
from basset.training.metrics import binary_metrics, nan_mean, r2_per_target
from basset.training.optim import output_loss
from basset.training.predict import predict_codes
from basset.training.resident import ResidentData, device_split
from basset.training.seam import StopTraining

SUBSET_SEED = 26  # the subset's one seed: never the run's, so every run scores the same rows
EVAL_BATCH = 1024  # validation batch (at least the training batch)
CHUNK_ROWS = 8192  # validate_checkpoint checks `cancel` after this many rows
CANCELLED = "interrupted"  # StopTraining's reason when validate_checkpoint is cancelled


def subset_rows(n: int, size: int | None) -> np.ndarray | None:
    """`size` of the `n` validation rows, in file order, drawn once from SUBSET_SEED; None (all
    rows) when size is None or not below n. The draw orders the rows by PCG64's raw output,
    which numpy keeps fixed across releases, so the subset is the same everywhere."""
    if size is None or size >= n:
        return None
    keys = np.random.PCG64(SUBSET_SEED).random_raw(n)
    return np.sort(np.argsort(keys, kind="stable")[:size])


def score_outputs(outputs: torch.Tensor, targets: torch.Tensor,
                  target_type: str) -> tuple[float, np.ndarray, np.ndarray]:
    """(loss per sequence, per-target AUROC or R2, per-target AUPRC or NaN) of a model's
    activated outputs against the targets (binary: on the outputs' device, all at once)."""
    truth = targets.to(outputs.device).float()
    loss = float(output_loss(outputs, truth, target_type).item()) / max(1, len(truth))
    if target_type == "binary":
        auroc, auprc = binary_metrics(truth, outputs)
        return loss, auroc, auprc
    preds = outputs.cpu().numpy()
    return loss, r2_per_target(truth.cpu().numpy(), preds), np.full(preds.shape[1], np.nan)


@dataclass(frozen=True)
class FullValidation:
    """A model's scores on the whole validation split."""

    metric: float  # mean over targets: AUROC, or R2 (NaN targets left out)
    auprc: float
    target_metric: list[float]
    rows: int


def validate_checkpoint(path: Path, data: BassetData, *, device: str = "cpu", rc: bool = False,
                        amp: bool = True, resident: ResidentData | None = None,
                        cancel: Callable[[], bool] | None = None) -> FullValidation:
    """The model in `path` scored on all of `data`'s validation split, with the predictions and
    metrics of the trainer's evaluations. `resident`: the split already on `device`.
    `cancel`: asked between chunks of CHUNK_ROWS rows; True raises StopTraining(CANCELLED)."""
    loaded = load_model(path, device)
    if resident is None:
        valid = device_split(data.valid, resolve_device(device))
    else:
        valid = resident.valid
    batch = max(EVAL_BATCH, loaded.params.batch_size)
    parts = []
    for start in range(0, len(valid.codes), CHUNK_ROWS):
        if cancel is not None and cancel():
            raise StopTraining(CANCELLED)
        parts.append(predict_codes(loaded.model, valid.codes[start:start + CHUNK_ROWS],
                                   batch_size=batch, rc=rc, amp=amp))
    _, target_metric, target_auprc = score_outputs(torch.cat(parts), valid.targets,
                                                   loaded.params.target_type)
    return FullValidation(metric=nan_mean(target_metric), auprc=nan_mean(target_auprc),
                          target_metric=[float(v) for v in target_metric],
                          rows=len(valid.codes))
