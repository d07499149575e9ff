"""Batched predictions from base codes: eval mode, optional strand averaging (Basset's -rc)."""

from __future__ import annotations

import numpy as np
import torch

from basset.data.h5read import Split
from basset.device import autocast
from basset.nn.model import BassetNet
from basset.training.metrics import binary_metrics
from basset.training.resident import codes_to_onehot


def reverse_complement(onehot: torch.Tensor) -> torch.Tensor:
    """(N,4,L) A,C,G,T one-hot -> its reverse complement (channels and positions reversed)."""
    return onehot.flip((1, 2))


def predict_codes(
    model: BassetNet,
    codes: torch.Tensor,
    *,
    batch_size: int = 256,
    rc: bool = False,
    amp: bool = False,
) -> torch.Tensor:
    """Activated outputs (N,T) float32 on the model's device for (N,L) codes on any device."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.no_grad(), autocast(device, amp):
            for start in range(0, len(codes), batch_size):
                x = codes_to_onehot(codes[start : start + batch_size].to(device, non_blocking=True))
                out = model.activation(model(x).float())
                if rc:
                    out = (out + model.activation(model(reverse_complement(x)).float())) / 2
                outputs.append(out)
    finally:
        model.train(was_training)
    if not outputs:
        return torch.empty(0, model.num_targets, device=device)
    return torch.cat(outputs)


def predict_proba(
    model: BassetNet,
    codes: np.ndarray,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    rc: bool = False,
) -> np.ndarray:
    """(N,T) predictions for (N,L) uint8 codes: probabilities for binary targets."""
    model.to(device)
    host = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.uint8))
    return predict_codes(model, host, batch_size=batch_size, rc=rc).cpu().numpy()


def split_scores(
    model: BassetNet,
    split: Split,
    *,
    batch_size: int = 256,
    device: str = "cpu",
    rc: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-target (AUROC, AUPRC) of a binary-target model on a split (basset-test's numbers);
    NaN for a target with one class in the split."""
    preds = predict_proba(model, split.seqs, batch_size=batch_size, device=device, rc=rc)
    return binary_metrics(split.targets, preds)
