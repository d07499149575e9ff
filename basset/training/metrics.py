"""Per-target validation metrics: AUROC and AUPRC for binary targets, R2 for regression targets.

A binary target with a single class has no AUROC: it gets NaN (Basset gave it 1.0) and is left out
of the mean.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score


def binary_metrics(targets: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(AUROC, AUPRC) per target column of (N, T) arrays; NaN where a target has one class."""
    labels = targets > 0.5
    num_targets = labels.shape[1]
    auroc = np.full(num_targets, np.nan)
    auprc = np.full(num_targets, np.nan)
    for t in range(num_targets):
        positives = int(labels[:, t].sum())
        if 0 < positives < len(labels):
            auroc[t] = roc_auc_score(labels[:, t], preds[:, t])
            auprc[t] = average_precision_score(labels[:, t], preds[:, t])
    return auroc, auprc


def r2_per_target(targets: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Coefficient of determination per target; NaN for a constant target."""
    r2 = np.full(targets.shape[1], np.nan)
    for t in range(targets.shape[1]):
        if np.ptp(targets[:, t]) > 0:
            r2[t] = r2_score(targets[:, t], preds[:, t])
    return r2


def nan_mean(values: np.ndarray) -> float:
    """Mean over the finite values; NaN when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan")
    return float(finite.mean())


def single_class_targets(targets: np.ndarray) -> list[int]:
    """Indices of binary target columns with only one class."""
    positives = (targets > 0.5).sum(axis=0)
    return [int(t) for t in np.flatnonzero((positives == 0) | (positives == len(targets)))]
