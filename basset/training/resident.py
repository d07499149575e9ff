"""A data set's splits ready on the training device, and the codes -> one-hot expansion.

Codes are expanded on the device, batch by batch (N becomes 0.25 in every channel, as Basset);
binary targets stay uint8 there too and each batch is converted to float (`batch_targets`).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from basset.data.h5read import BassetData, Split
from basset.device import resolve_device

log = logging.getLogger(__name__)

DEVICE_DATA_FRACTION = 0.5  # data go to the GPU when they take at most this share of free memory


@dataclass
class DeviceSplit:
    """A split's codes (uint8) and targets (uint8 or float32) as tensors, on the device when
    they fit."""

    codes: torch.Tensor
    targets: torch.Tensor


class ResidentData:
    """The train and valid splits of `data` ready on `device`, for train(..., resident=...).

    On a GPU the splits are copied to the card when they take at most DEVICE_DATA_FRACTION of its
    free memory (else they stay in pinned host memory and batches are copied; a read-only shared
    copy, basset.data.shared, stays where it is: pinning would copy it into every worker); on
    the CPU the tensors share the host arrays. Build it once and pass it to every run on that
    device (an HPO worker's trials), so the data set is copied once, not once per run.
    """

    def __init__(self, data: BassetData, device: str | torch.device) -> None:
        self.data = data
        self.device = resolve_device(str(device))
        self.train = device_split(data.train, self.device)
        self.valid = device_split(data.valid, self.device)


def device_split(split: Split, device: torch.device) -> DeviceSplit:
    codes, targets = _host_tensor(split.seqs, np.uint8), _host_tensor(split.targets, None)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if codes.nbytes + targets.nbytes <= DEVICE_DATA_FRACTION * free:
            return DeviceSplit(codes.to(device), targets.to(device))
        if not split.seqs.flags.writeable:
            log.info("data set too large for the GPU: batches are copied from the shared copy")
            return DeviceSplit(codes, targets)
        log.info("data set too large for the GPU: batches are copied from pinned host memory")
        return DeviceSplit(codes.pin_memory(), targets.pin_memory())
    return DeviceSplit(codes, targets)


def _host_tensor(array: np.ndarray, dtype: type | None) -> torch.Tensor:
    """A tensor over `array`'s memory (no copy when it is contiguous and of `dtype`). A
    read-only array (a shared copy) gives a tensor torch cannot write to either: nothing here
    writes to it, and a write would end the process, not change the others' data."""
    contiguous = np.ascontiguousarray(array, dtype=dtype)
    with warnings.catch_warnings():  # torch warns that it cannot protect read-only memory
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(contiguous)


def batch_targets(targets: torch.Tensor, index: torch.Tensor,
                  device: torch.device) -> torch.Tensor:
    """The rows `index` of a split's targets on `device` as float32 (uint8 0/1 become exactly
    0.0/1.0: the numbers float32 targets would give)."""
    return targets[index].to(device, non_blocking=True).float()


def codes_to_onehot(codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, L) integer codes -> (N, 4, L) one-hot, N as 0.25 in all four channels."""
    table = torch.tensor(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.25, 0.25, 0.25, 0.25]],
        dtype=dtype,
        device=codes.device,
    )
    return table[codes.long()].transpose(1, 2)
