"""Per-target validation metrics: AUROC and AUPRC for binary targets, R2 for regression targets.

A binary target with a single class has no AUROC: it gets NaN (Basset gave it 1.0) and is left out
of the mean.

AUROC and AUPRC are computed for every target at once (one sort per target column, in torch, on
the device the predictions are on) with scikit-learn's definitions, ties included:
`roc_auc_score` is the trapezoid area under the ROC curve whose points are the distinct
prediction values, `average_precision_score` the sum over those points of (recall gain) x
precision. The counts are exact integers; the values agree with scikit-learn's to rounding
(tests/training/test_metrics.py), at a small fraction of its per-target loop's cost
(docs/benchmarks.md, "Evaluation metrics").
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK_ELEMENTS = 1 << 21  # predictions sorted at once (rows x columns): bounds the work memory


def binary_metrics(targets: np.ndarray | torch.Tensor,
                   preds: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(AUROC, AUPRC) per target column of (N, T) arrays or tensors (on any device, computed
    there); NaN where a target has one class. ValueError for NaN or infinite predictions, as
    scikit-learn's."""
    scores = torch.as_tensor(preds)
    labels = torch.as_tensor(targets).to(scores.device) > 0.5
    num_rows, num_targets = labels.shape
    auroc = np.full(num_targets, np.nan)
    auprc = np.full(num_targets, np.nan)
    width = max(1, BLOCK_ELEMENTS // max(1, num_rows))
    for start in range(0, num_targets, width):
        cols = slice(start, start + width)
        roc, prc = _column_metrics(labels[:, cols].T, scores[:, cols].T)
        auroc[cols], auprc[cols] = roc, prc
    return auroc, auprc


def _column_metrics(labels: torch.Tensor, scores: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(AUROC, AUPRC) of each row of (T, N) labels (bool) and scores."""
    num_targets, num = labels.shape
    # One sort of values only (faster than an argsort and a gather): the label rides in the
    # lowest bit of an order-preserving integer key of the score. Descending, as scikit-learn.
    keys = _sorted_keys(scores, labels)
    tp = (keys & 1).cumsum(1, dtype=torch.int32)  # true positives above each threshold
    # A threshold point ends each run of equal scores (scikit-learn's distinct_value_indices):
    # where the next key differs in more than the label bit.
    last = torch.ones(keys.shape, dtype=torch.bool, device=keys.device)
    last[:, :-1] = (keys[:, 1:] ^ keys[:, :-1]) > 1
    points = last.view(-1).nonzero().squeeze(1)  # row-major: column after column
    column, position = points // num, points % num
    tp = tp.view(-1)[points].long()  # the counts at the points
    fp = position + 1 - tp
    first = torch.ones_like(column, dtype=torch.bool)
    first[1:] = column[1:] != column[:-1]
    prev_tp, prev_fp = _shift(tp, first), _shift(fp, first)
    # Twice the trapezoid area under the (fp, tp) curve, in integer counts (exact).
    area2 = _column_sum((fp - prev_fp) * (tp + prev_tp), column, num_targets)
    gain = _column_sum((tp - prev_tp).double() * tp.double() / (position + 1).double(), column,
                       num_targets)
    positives = labels.sum(1)
    negatives = num - positives
    auroc = area2.double() / (2 * positives * negatives).double()
    ap = gain / positives.double()
    both = (positives > 0) & (negatives > 0)
    nan = torch.full_like(auroc, float("nan"))
    return (torch.where(both, auroc, nan).cpu().numpy(),
            torch.where(both, ap, nan).cpu().numpy())


def _sorted_keys(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each row's (score key * 2 + label), sorted in descending order. The key orders as the
    float32 scores (-0.0 and 0.0 equal); scores in [0, 2) (probabilities) fit int32 keys, which
    sort faster; on the CPU numpy's (vectorised) sort is used."""
    bits = (scores.float() + 0.0).contiguous().view(torch.int32)
    if bool(((bits >= 0) & (bits < (1 << 30))).all()):
        keys = bits * 2 + labels.int()
    else:  # (NaN and infinity never pass the test above)
        if not bool(torch.isfinite(scores).all()):
            raise ValueError("predictions contain NaN or infinity")
        wide = bits.long()
        keys = torch.where(wide >= 0, wide + (1 << 31), -1 - wide) * 2 + labels.long()
    if keys.device.type != "cpu":
        return keys.sort(dim=1, descending=True).values
    ascending = np.sort(keys.numpy(), axis=1)
    return torch.from_numpy(np.ascontiguousarray(ascending[:, ::-1]))


def _shift(values: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """Each point's predecessor in its column (0 before a column's first point)."""
    shifted = torch.zeros_like(values)
    shifted[1:] = values[:-1]
    return torch.where(first, torch.zeros_like(values), shifted)


def _column_sum(values: torch.Tensor, column: torch.Tensor, num_targets: int) -> torch.Tensor:
    return torch.zeros(num_targets, dtype=values.dtype, device=values.device).index_add_(
        0, column, values)


def r2_per_target(targets: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Coefficient of determination per target; NaN for a constant target. (scikit-learn is
    imported here, for regression targets only: importing it costs a worker about a second, as
    much as torch, and binary targets never need it.)"""
    from sklearn.metrics import r2_score

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
