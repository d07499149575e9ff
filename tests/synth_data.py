"""Tiny learnable BassetData for trainer tests: target t is 1 where motif t was planted."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from basset.data.h5read import BassetData, Split


def motif_split(rng: np.random.Generator, n: int, seq_len: int, motifs: np.ndarray) -> Split:
    codes = rng.integers(0, 4, size=(n, seq_len), dtype=np.uint8)
    codes[rng.random((n, seq_len)) < 0.01] = 4  # a few N
    targets = (rng.random((n, len(motifs))) < 0.5).astype(np.float32)
    width = motifs.shape[1]
    for i, t in zip(*np.nonzero(targets), strict=True):
        start = rng.integers(0, seq_len - width + 1)
        codes[i, start : start + width] = motifs[t]
    return Split(codes, targets, headers=[f"seq{i}" for i in range(n)])


def make_data(
    n_train: int = 256, n_valid: int = 128, n_test: int = 64, seq_len: int = 50,
    num_targets: int = 2, seed: int = 0,
) -> BassetData:
    rng = np.random.default_rng(seed)
    motifs = rng.integers(0, 4, size=(num_targets, 6), dtype=np.uint8)
    return BassetData(
        train=motif_split(rng, n_train, seq_len, motifs),
        valid=motif_split(rng, n_valid, seq_len, motifs),
        test=motif_split(rng, n_test, seq_len, motifs),
        target_labels=[f"t{i}" for i in range(num_targets)],
    )


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and two cores shared by other processes make
    OpenMP's spinning threads crawl: the trainer tests use this fixture autouse."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
