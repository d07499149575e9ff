"""Basset HDF5 data in memory: sequences as compact base codes, targets as float32.

Sequences are held as uint8 codes (0..3 = A,C,G,T; 4 = N), a quarter of float16 one-hot, and
expanded to one-hot on the device, batch by batch (N becomes 0.25 in every channel, as Basset).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

N_CODE = 4
SPLITS = ("train", "valid", "test")


@dataclass
class Split:
    seqs: np.ndarray  # (N, L) uint8 codes
    targets: np.ndarray  # (N, T) float32
    headers: list[str] | None = None

    def __len__(self) -> int:
        return len(self.seqs)


@dataclass
class BassetData:
    train: Split
    valid: Split
    test: Split | None
    target_labels: list[str]

    @property
    def seq_len(self) -> int:
        return int(self.train.seqs.shape[1])

    @property
    def num_targets(self) -> int:
        return len(self.target_labels)


def codes_to_onehot(codes: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, L) integer codes -> (N, 4, L) one-hot, N as 0.25 in all four channels."""
    table = torch.tensor(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.25, 0.25, 0.25, 0.25]],
        dtype=dtype,
        device=codes.device,
    )
    return table[codes.long()].transpose(1, 2)
