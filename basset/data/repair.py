"""`basset-preprocess --repair-scrambled IN OUT`: undo the one-hot scramble of Basset's 2020
`seq_hdf5.py`.

Since commit 18753ad Basset's `dna_one_hot` returns a position-major (L, 4) boolean array, and
`seq_hdf5.py` still reshapes the flattened sequences to (N, 4, 1, L). That reshape only
reinterprets the bytes, so reading each row back as (L, 4) and transposing to channel-major
(4, L) restores the one-hot exactly. What cannot be restored: that code gave every N a random
base before the scramble, so those positions stay random bases.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
from rich.progress import Progress

from basset.data.h5read import SCRAMBLE_SAMPLE_ROWS, SPLITS, non_onehot_fraction
from basset.data.onehot import codes_from_onehot, onehot_from_codes
from basset.errors import DataError
from basset.fileio import atomic_path, check_distinct

log = logging.getLogger(__name__)

BLOCK_ROWS = 8192
LOST_N_WARNING = (
    "positions that were N in the original sequences were given random bases by Basset's 2020 "
    "code before it scrambled them; they stay those random bases and cannot be recovered "
    "(run basset-preprocess on the FASTA to get N as 0.25)"
)


def unscramble(block: np.ndarray) -> np.ndarray:
    """(n, 4, 1, L) or (n, 4, L) scrambled rows -> (n, 4, L) channel-major one-hot."""
    n, length = block.shape[0], block.shape[-1]
    return np.ascontiguousarray(block.reshape(n, length, 4).transpose(0, 2, 1))


def repair_scrambled(
    source: str | Path,
    out: str | Path,
    *,
    onehot_dtype: str = "float16",
    progress: Progress | None = None,
) -> dict[str, int]:
    """Write `out`: `source` with every `{split}_in` unscrambled (as `onehot_dtype`) and every
    other dataset copied. Refuses a file whose one-hot is not scrambled, or not in this way.
    Returns the rows repaired per split."""
    source, out = Path(source), Path(out)
    if not source.is_file():
        raise DataError(f"data file not found: {source}")
    if not h5py.is_hdf5(source):
        raise DataError(f"{source}: not an HDF5 file")
    check_distinct([("the scrambled file", source)], [("the repaired file", out)])
    dtype = np.dtype(onehot_dtype)
    counts: dict[str, int] = {}
    with h5py.File(source, "r") as h5:
        inputs = [f"{name}_in" for name in SPLITS if f"{name}_in" in h5]
        if not inputs:
            raise DataError(f"{source}: no train_in/valid_in/test_in datasets")
        for name in inputs:
            _check_scrambled(h5[name], f"{source}: {name}")
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as repaired:
            for name in h5:
                if name not in inputs:
                    h5.copy(h5[name], repaired, name=name)
            for name in inputs:
                counts[name.removesuffix("_in")] = _repair_dataset(
                    h5[name], repaired, name, dtype, progress
                )
    return counts


def _check_scrambled(onehot: h5py.Dataset, where: str) -> None:
    shape = onehot.shape
    if len(shape) not in (3, 4) or shape[1] != 4 or (len(shape) == 4 and shape[2] != 1):
        raise DataError(f"{where}: shape {shape}, expected (N, 4, 1, L) or (N, 4, L)")
    sample = onehot[:SCRAMBLE_SAMPLE_ROWS].reshape(-1, 4, shape[-1])
    if len(sample) == 0:
        return
    if non_onehot_fraction(sample) == 0:
        raise DataError(f"{where}: the one-hot is not scrambled; nothing to repair")
    wrong = non_onehot_fraction(unscramble(sample))
    if wrong > 0:
        raise DataError(
            f"{where}: not Basset's 2020 scramble: {wrong:.0%} of sampled positions are still "
            "not one-hot after undoing it"
        )


def _repair_dataset(
    onehot: h5py.Dataset,
    out: h5py.File,
    name: str,
    dtype: np.dtype,
    progress: Progress | None,
) -> int:
    n, length = onehot.shape[0], onehot.shape[-1]
    chunk_rows = max(1, min(n, (256 << 10) // (4 * length * dtype.itemsize)))
    target = out.create_dataset(
        name,
        shape=(n, 4, 1, length),
        dtype=dtype,
        **(
            {"chunks": (chunk_rows, 4, 1, length), "compression": "gzip",
             "compression_opts": 1, "shuffle": True}
            if n
            else {}
        ),
    )
    task = progress.add_task(f"repairing {name}", total=n) if progress else None
    for start in range(0, n, BLOCK_ROWS):
        block = unscramble(onehot[start : start + BLOCK_ROWS])
        # Through base codes, so that all-zero (N) positions come out as this dtype's N.
        target[start : start + len(block), :, 0, :] = onehot_from_codes(
            codes_from_onehot(block), dtype
        )
        if progress is not None and task is not None:
            progress.update(task, completed=start + len(block))
    return n
