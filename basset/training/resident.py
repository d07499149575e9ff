"""A data set's splits ready on the training device, and the codes -> one-hot expansion.

Codes are expanded on the device, batch by batch (N becomes 0.25 in every channel, as Basset).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from basset.data.h5read import BassetData, Split
from basset.device import resolve_device

log = logging.getLogger(__name__)

DEVICE_DATA_FRACTION = 0.5  # data go to the GPU when they take at most this share of free memory


@dataclass
class DeviceSplit:
    """A split's codes (uint8) and targets (float32) as tensors, on the device when they fit."""

    codes: torch.Tensor
    targets: torch.Tensor


class ResidentData:
    """The train and valid splits of `data` ready on `device`, for train(..., resident=...).

    On a GPU the splits are copied to the card when they take at most DEVICE_DATA_FRACTION of its
    free memory (else they stay in pinned host memory and batches are copied); on the CPU the
    tensors share the host arrays. Build it once and pass it to every run on that device (an HPO
    worker's trials), so the data set is copied once, not once per run.
    """

    def __init__(self, data: BassetData, device: str | torch.device) -> None:
        self.data = data
        self.device = resolve_device(str(device))
        self.train = _device_split(data.train, self.device)
        self.valid = _device_split(data.valid, self.device)


def _device_split(split: Split, device: torch.device) -> DeviceSplit:
    codes = torch.from_numpy(np.ascontiguousarray(split.seqs, dtype=np.uint8))
    targets = torch.from_numpy(np.ascontiguousarray(split.targets, dtype=np.float32))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if codes.nbytes + targets.nbytes <= DEVICE_DATA_FRACTION * free:
            return DeviceSplit(codes.to(device), targets.to(device))
        log.info("data set too large for the GPU: batches are copied from pinned host memory")
        return DeviceSplit(codes.pin_memory(), targets.pin_memory())
    return DeviceSplit(codes, targets)


def codes_to_onehot(codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, L) integer codes -> (N, 4, L) one-hot, N as 0.25 in all four channels."""
    table = torch.tensor(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.25, 0.25, 0.25, 0.25]],
        dtype=dtype,
        device=codes.device,
    )
    return table[codes.long()].transpose(1, 2)
