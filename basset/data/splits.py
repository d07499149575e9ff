"""The train/valid/test split of basset-preprocess (as seq_hdf5.py): sizes from fractions or
counts, the seeded shuffle, and the -v/-t/seed/--dtype arguments basset-features shares.
"""

from __future__ import annotations

import argparse

import numpy as np

from basset.errors import DataError
from basset.h5write import ONEHOT_DTYPES


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


def split_size(text: str) -> float:
    """argparse type of -v/-t: a fraction in [0, 1) or a whole count of sequences."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a fraction in [0, 1) or a whole count of sequences"
        )
    return value


def add_split_arguments(parser: argparse.ArgumentParser, *seed_flags: str) -> None:
    """-v/--valid, -t/--test, the shuffling seed (under `seed_flags`) and --dtype of the HDF5:
    basset-preprocess's, shared by basset-features."""
    parser.add_argument(
        "-v",
        "--valid",
        type=split_size,
        default=0.1,
        help="validation size: fraction (<1) or count (default 0.1)",
    )
    parser.add_argument(
        "-t",
        "--test",
        type=split_size,
        default=0.1,
        help="test size: fraction (<1) or count (default 0.1)",
    )
    parser.add_argument(*seed_flags, dest="seed", type=int, default=1, help="shuffling seed (default 1)")
    parser.add_argument(
        "--dtype",
        choices=sorted(ONEHOT_DTYPES),
        default="float16",
        help="float16: Basset-compatible, N = 0.25 (default); uint8: compact, N = zeros",
    )
