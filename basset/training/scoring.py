"""Held-out scores of a checkpoint: mean and per-target AUROC/AUPRC of its model on one split
of a data set (basset-test's numbers: the same batches, predictions and metrics; -rc averages
both strands). Whatever drives the trainer (the HPO service, another engine, a notebook) scores
its selected model with `score_checkpoint(path, data, split="test")`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basset.data.h5read import BassetData, Split, load_data
from basset.errors import DataError
from basset.training.checkpoint import load_model
from basset.training.metrics import nan_mean
from basset.training.predict import split_scores

BATCH_SIZE = 256  # basset-test's default: the same batches, the same numbers
SPLITS = ("test", "valid", "train")  # the splits a model can be scored on, as scripts list them


@dataclass(frozen=True)
class Scores:
    """One model's scores on one split. NaN marks a target with one class in that split."""

    split: str
    target_auroc: list[float]
    target_auprc: list[float]

    @property
    def auroc(self) -> float:
        return nan_mean(np.array(self.target_auroc))

    @property
    def auprc(self) -> float:
        return nan_mean(np.array(self.target_auprc))


def score_checkpoint(checkpoint: str | Path, data: BassetData, *, split: str = "test",
                     device: str = "cpu", rc: bool = False) -> Scores:
    """Per-target AUROC/AUPRC of the model in `checkpoint` on `data`'s `split` (rc: averaged
    over both strands, for a model that trained and validated with -rc).

    DataError if the split is unknown or empty, the model was trained on other targets or
    sequence lengths, its targets are not binary, or the checkpoint is missing or damaged.
    """
    part = split_of(data, split)
    loaded = load_model(checkpoint, device)
    if loaded.target_labels != list(data.target_labels) or loaded.seq_len != data.seq_len:
        raise DataError(
            f"{checkpoint} was trained on other data (targets or sequence length differ)"
        )
    if loaded.params.target_type != "binary":
        raise DataError(f"{checkpoint}: AUROC needs binary targets, "
                        f"not {loaded.params.target_type}")
    auroc, auprc = split_scores(loaded.model, part, batch_size=BATCH_SIZE, device=device, rc=rc)
    return Scores(split, [float(v) for v in auroc], [float(v) for v in auprc])


def split_of(data: BassetData, split: str) -> Split:
    """`data`'s split named `split` (test, valid or train); DataError if unknown or empty."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    part = getattr(data, split)
    if part is None or len(part) == 0:
        raise DataError(f"the data set has no {split} sequences")
    return part


def load_split(path: str | Path, split: str = "test") -> BassetData:
    """Only the split to score (the others come back empty)."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    data = load_data(path, splits=(split,))
    split_of(data, split)
    return data
