"""basset.training.metrics: the vectorised AUROC/AUPRC against scikit-learn's per-target loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

import basset.training.metrics as metrics
from basset.training.metrics import binary_metrics


def _sklearn(targets: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    auroc, auprc = np.full(targets.shape[1], np.nan), np.full(targets.shape[1], np.nan)
    for t in range(targets.shape[1]):
        if 0 < targets[:, t].sum() < len(targets):
            auroc[t] = roc_auc_score(targets[:, t], preds[:, t])
            auprc[t] = average_precision_score(targets[:, t], preds[:, t])
    return auroc, auprc


def _random(rows: int, cols: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets with skewed positive rates (and two single-class columns); predictions that
    follow them, rounded so that many values tie (within and across classes)."""
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.01, 0.6, cols)
    targets = (rng.random((rows, cols)) < rate).astype(np.uint8)
    targets[:, 1] = 0
    targets[:, 2] = 1
    preds = rng.random((rows, cols)) + targets * rng.uniform(0, 1, cols)
    digits = rng.integers(1, 4, cols)  # 10 .. 1000 distinct values per column
    preds = np.stack([np.round(preds[:, t], digits[t]) for t in range(cols)], axis=1)
    return targets, preds.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_sklearn_with_ties(seed: int) -> None:
    targets, preds = _random(3000, 12, seed)
    auroc, auprc = binary_metrics(targets, preds)
    want_roc, want_prc = _sklearn(targets, preds)
    assert np.isnan(auroc[[1, 2]]).all() and np.isnan(auprc[[1, 2]]).all()
    np.testing.assert_allclose(auroc, want_roc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(auprc, want_prc, rtol=0, atol=1e-12)


def test_column_blocks_and_tensor_input_give_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch, device: str
) -> None:
    targets, preds = _random(500, 9, 3)
    whole = binary_metrics(targets, preds)
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 1000)  # two columns per block
    blocked = binary_metrics(torch.from_numpy(targets).to(device),
                             torch.from_numpy(preds).to(device))
    for got, want in zip(blocked, whole, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_hand_computed_values() -> None:
    # scores 0.9 (pos), 0.8 (neg), 0.8 (pos), 0.1 (neg): pairs pos>neg: (0.9,0.8), (0.9,0.1),
    # (0.8,0.1), one tie (0.8,0.8) counts a half -> 3.5 / 4; AP = 1/2 * 1 + 1/2 * 2/3.
    targets = np.array([[1], [0], [1], [0]], dtype=np.uint8)
    preds = np.array([[0.9], [0.8], [0.8], [0.1]], dtype=np.float32)
    auroc, auprc = binary_metrics(targets, preds)
    assert auroc[0] == pytest.approx(3.5 / 4, abs=1e-15)
    assert auprc[0] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-15)


def test_nan_predictions_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics(np.array([[0], [1]]), np.array([[0.5], [np.nan]], dtype=np.float32))
