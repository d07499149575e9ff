"""basset-features' outputs: the BED, the activity table, the FASTA and the features' ids,
the rows formatted by compiled (numba) loops, a chunk of rows per write.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO

import numba
import numpy as np

if TYPE_CHECKING:
    from basset.data.merge import Features

WRITE_ROWS = 65_536
CHUNK_BYTES = (
    1 << 20
)  # text a write: 16 MB writes took twice the CPU (the buffer outgrows the cache)
BED_ROWS, ACTIVITY_ROWS = 1, 2  # the kinds of rows _format_rows writes (0: ids)
# "\t0\t1..." of the 8 samples of each activity byte (bit k: the k-th cell)
POWERS_OF_TEN = 10 ** np.arange(19, dtype=np.int64)
LOWEST_BIT = np.array(
    [(byte & -byte).bit_length() - 1 for byte in range(256)], np.int64
)  # of byte > 0
ACTIVITY_CELLS = np.array(
    [[9, 48 + (byte >> (k // 2) & 1)][k % 2] for byte in range(256) for k in range(16)], np.uint8
).reshape(256, 16)


def _chunks(n: int, row_bytes: int = 1) -> Iterator[slice]:
    """Slices of about CHUNK_BYTES of text (WRITE_ROWS rows at most)."""
    step = max(1, min(WRITE_ROWS, CHUNK_BYTES // row_bytes))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _name_bytes(features: Features) -> tuple[np.ndarray, np.ndarray]:
    """The chromosome names as one UTF-8 buffer and their offsets in it."""
    encoded = [name.encode() for name in features.chroms]
    offsets = np.cumsum([0, *map(len, encoded)]).astype(np.int64)
    return np.frombuffer(b"".join(encoded) or b" ", np.uint8), offsets


def _id_bound(name_offsets: np.ndarray) -> int:
    """Bytes of an id, with its coordinates, at most."""
    return int(np.diff(name_offsets).max(initial=0)) + 2 * 20 + 8


def feature_ids(features: Features) -> list[str]:
    """`chrom:start-end(strand)` of every feature, as bedtools getfasta -s names them."""
    names, offsets = _name_bytes(features)
    chunks = _formatted(features, names, offsets, _id_bound(offsets), 0, 0)
    return b"".join(text.tobytes() for text in chunks).decode().split("\n")[:-1]


def write_bed(handle: BinaryIO, features: Features) -> None:
    """Basset's 7 columns: chrom, start, end, '.', '1', strand, active sample indexes
    ('.': none)."""
    names, offsets = _name_bytes(features)
    bound = _id_bound(offsets) + features.n_targets * (len(str(features.n_targets)) + 1)
    _write_rows(handle, features, names, offsets, bound, BED_ROWS)


def write_activity(handle: BinaryIO, features: Features, labels: Sequence[str]) -> None:
    """Basset's activity table: a header of labels after an empty cell, then `id 0/1 ...`."""
    handle.write(("\t".join(["", *labels]) + "\n").encode())
    names, offsets = _name_bytes(features)
    bound = _id_bound(offsets) + 2 * features.n_targets
    _write_rows(handle, features, names, offsets, bound, ACTIVITY_ROWS)


def _write_rows(
    handle: BinaryIO,
    features: Features,
    names: np.ndarray,
    offsets: np.ndarray,
    bound: int,
    kind: int,
) -> None:
    for text in _formatted(features, names, offsets, bound, kind, features.n_targets):
        handle.write(text.data)


def _formatted(
    features: Features,
    names: np.ndarray,
    offsets: np.ndarray,
    bound: int,
    kind: int,
    n_targets: int,
) -> Iterator[np.ndarray]:
    """The rows' text (_format_rows' kind and n_targets, `bound` bytes a row at most), a chunk at
    a time in one buffer reused from chunk to chunk: each chunk is gone when the next comes."""
    out = np.empty(0, np.uint8)
    for rows in _chunks(len(features), bound):
        if len(out) < (rows.stop - rows.start) * bound:
            out = np.empty((rows.stop - rows.start) * bound, np.uint8)
        used = _format_rows(out, names, offsets, features.chrom[rows], features.start[rows],
                            features.minus[rows], features.activity[rows].view(np.uint8),
                            features.size, n_targets, kind)
        yield out[:used]


@numba.njit(cache=True)
def _format_rows(out, names, offsets, chrom, start, minus, bits, size, n_targets, kind):
    """Rows into `out`, returning the bytes used: ids `chrom:start-end(strand)` (kind 0, as
    bedtools getfasta -s names them), BED rows (BED_ROWS) or activity-table rows (ACTIVITY_ROWS).
    bits: the activity words as bytes (bit k of byte j: sample 8j + k)."""
    at = 0
    for r in range(len(chrom)):
        name_lo, name_hi = offsets[chrom[r]], offsets[chrom[r] + 1]
        for j in range(name_lo, name_hi):  # loops, not slices: numba's slice copies cost more
            out[at] = names[j]
            at += 1
        strand = 45 if minus[r] else 43  # '-', '+'
        if kind == BED_ROWS:
            out[at] = 9
            at = _decimal(out, at + 1, start[r])
            out[at] = 9
            at = _decimal(out, at + 1, start[r] + size)
            out[at], out[at + 1], out[at + 2], out[at + 3] = 9, 46, 9, 49  # '\t.\t1'
            out[at + 4], out[at + 5], out[at + 6] = 9, strand, 9
            at += 7
            first = at
            for j in range((n_targets + 7) >> 3):  # bits past n_targets are 0
                byte = bits[r, j]
                while byte:
                    at = _decimal(out, at, 8 * j + LOWEST_BIT[byte])
                    out[at] = 44  # ','
                    at += 1
                    byte &= byte - 1
            if at == first:
                out[at] = 46  # '.'
                at += 1
            else:
                at -= 1  # the last comma
        else:
            out[at] = 58  # ':'
            at = _decimal(out, at + 1, start[r])
            out[at] = 45  # '-'
            at = _decimal(out, at + 1, start[r] + size)
            out[at], out[at + 1], out[at + 2] = 40, strand, 41  # '(', strand, ')'
            at += 3
            for j in range(n_targets >> 3):  # kind ACTIVITY_ROWS: 8 cells a byte
                for q in range(16):
                    out[at + q] = ACTIVITY_CELLS[bits[r, j], q]
                at += 16
            for t in range(n_targets & ~7, n_targets):
                out[at] = 9
                out[at + 1] = 49 if bits[r, t >> 3] >> (t & 7) & 1 else 48
                at += 2
        out[at] = 10
        at += 1
    return at


@numba.njit(cache=True)
def _decimal(out, at, value):
    """The decimal digits of value >= 0 at out[at:], returning the position after them."""
    digits = 1
    while digits < len(POWERS_OF_TEN) and value >= POWERS_OF_TEN[digits]:
        digits += 1
    for j in range(digits - 1, -1, -1):
        out[at + j] = 48 + value % 10
        value //= 10
    return at + digits


def write_fasta(handle: BinaryIO, ids: Sequence[str], seqs: np.ndarray) -> None:
    length = seqs.shape[1]
    for rows in _chunks(len(ids)):
        text = seqs[rows].tobytes()
        handle.write(
            b"".join(
                b">%s\n%s\n" % (name.encode(), text[r * length : (r + 1) * length])
                for r, name in enumerate(ids[rows])
            )
        )
