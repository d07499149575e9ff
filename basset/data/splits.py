"""The train/valid/test split of basset-preprocess (as seq_hdf5.py): sizes from fractions or
counts, the seeded shuffle, and the -v/-t/seed/--dtype arguments basset-features shares.
"""

from __future__ import annotations

import numpy as np

from basset.errors import DataError


def split_counts(n: int, valid: float, test: float) -> tuple[int, int, int]:
    """(train, valid, test) sizes; `valid`/`test` are fractions (< 1, rounded as seq_hdf5.py)
    or counts."""
    n_valid, n_test = (int(0.5 + size * n) if size < 1 else int(size) for size in (valid, test))
    n_train = n - n_valid - n_test
    if n_train <= 0:
        raise DataError(
            f"split sizes leave no training data: {n} sequences, valid {n_valid} + test {n_test}"
        )
    return n_train, n_valid, n_test


def split_indices(n: int, valid: float, test: float, seed: int) -> dict[str, np.ndarray]:
    """Shuffle with the seed (numpy's legacy generator, as seq_hdf5.py), then train, valid, test."""
    n_train, n_valid, _ = split_counts(n, valid, test)
    order = np.random.RandomState(seed).permutation(n)
    return {
        "train": order[:n_train],
        "valid": order[n_train : n_train + n_valid],
        "test": order[n_train + n_valid :],
    }
