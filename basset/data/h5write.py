"""Basset's HDF5 layout writer, shared by basset-preprocess, basset-demo-data and basset-features:
`{split}_in` (N, 4, 1, L) one-hot from compact base codes, written chunk by chunk (the chunks
deflated in parallel), `{split}_out`, `{split}_headers` and `target_labels`, atomically.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import h5py
import numpy as np
from rich.progress import Progress

from basset.data.onehot import onehot_from_codes
from basset.device import cpu_cores
from basset.fileio import atomic_path

ONEHOT_DTYPES = {"float16": np.float16, "uint8": np.uint8}
GZIP_LEVEL = 1
CHUNK_BYTES = 256 << 10


@dataclass
class SplitArrays:
    """One split to write: rows of `codes`/`targets` (in output order) and their ids."""

    codes: np.ndarray  # (N, L) uint8
    targets: np.ndarray  # (N, T)
    headers: Sequence[str]


def write_basset_h5(
    path: str | Path,
    splits: Mapping[str, SplitArrays],
    target_labels: Sequence[str],
    *,
    onehot_dtype: str = "float16",
    progress: Progress | None = None,
) -> Path:
    """Write Basset's layout atomically: `{split}_in` (N,4,1,L) one-hot, `{split}_out` (N,T),
    `{split}_headers`, `target_labels`. Compression is gzip level 1 with byte shuffle (smaller and,
    with the chunks compressed in parallel, faster than lzf here; readable by any HDF5 tool)."""
    path = Path(path)
    dtype = np.dtype(ONEHOT_DTYPES[onehot_dtype])
    with (
        atomic_path(path) as tmp,
        h5py.File(tmp, "w") as h5,
        ThreadPoolExecutor(_workers()) as pool,
    ):
        h5.create_dataset("target_labels", data=_ascii(target_labels))
        for name, split in splits.items():
            n, length = split.codes.shape
            chunk_rows = max(1, min(n, CHUNK_BYTES // (4 * length * dtype.itemsize)))
            compressed = {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}
            onehot = h5.create_dataset(
                f"{name}_in",
                shape=(n, 4, 1, length),
                dtype=dtype,
                **({**compressed, "chunks": (chunk_rows, 4, 1, length)} if n else {}),
            )
            h5.create_dataset(f"{name}_out", data=split.targets, **(compressed if n else {}))
            h5.create_dataset(f"{name}_headers", data=_ascii(split.headers))
            task = progress.add_task(f"writing {name}", total=n) if progress else None
            starts = range(0, n, chunk_rows)
            chunks = pool.map(
                partial(_deflated_chunk, split.codes, rows=chunk_rows, dtype=dtype), starts
            )
            for start, data in zip(starts, chunks, strict=True):
                onehot.id.write_direct_chunk((start, 0, 0, 0), data)
                if progress is not None and task is not None:
                    progress.update(task, completed=min(n, start + chunk_rows))
    return path


def _workers() -> int:
    return min(4, cpu_cores())


def _deflated_chunk(codes: np.ndarray, start: int, rows: int, dtype: np.dtype) -> bytes:
    """One HDF5 chunk of one-hot through the shuffle and deflate filters, done here so that
    chunks compress in parallel (zlib releases the GIL); the last chunk is zero-padded to size."""
    block = codes[start : start + rows]
    if len(block) < rows:
        block = np.concatenate([block, np.zeros((rows - len(block), codes.shape[1]), np.uint8)])
    raw = onehot_from_codes(block, dtype).view(np.uint8).reshape(-1, dtype.itemsize)
    return zlib.compress(raw.T.tobytes(), GZIP_LEVEL)


def _ascii(texts: Sequence[str]) -> np.ndarray:
    """Fixed-length byte strings, as seq_hdf5.py writes them (readable by torch-hdf5 too)."""
    encoded = [t.encode("utf-8") for t in texts]
    width = max((len(t) for t in encoded), default=1) or 1
    return np.array(encoded, dtype=f"S{width}")
