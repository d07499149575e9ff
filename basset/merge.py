"""Basset's merge of peaks into features (reference/basset.md §3.2), compiled with numba.

One sort of every peak packed into one integer, then one sweep that places the windows,
collapses identical ones into bit sets of samples (one bit per sample, in uint64 words) and runs
the greedy merge on each group as it closes. The pipeline around it is basset/features.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np

from basset.errors import DataError
from basset.featureio import _id_text

log = logging.getLogger(__name__)


@dataclass
class Intervals:
    """Every sample's peaks as points, concatenated."""

    chroms: list[str]
    chrom: np.ndarray  # int32 index into chroms
    minus: np.ndarray  # bool
    point: np.ndarray  # int64
    sample: np.ndarray  # int32 index into the sample table


@dataclass
class Features:
    chroms: list[str]
    chrom: np.ndarray  # (n,) int32
    minus: np.ndarray  # (n,) bool
    start: np.ndarray  # (n,) int64
    activity: np.ndarray  # (n, ceil(targets / 64)) uint64: bit t of row i = active in sample t
    size: int
    n_targets: int
    dropped: int = 0  # points on chromosomes shorter than `size`

    def __len__(self) -> int:
        return len(self.start)

    def active(self, rows: slice = slice(None)) -> np.ndarray:
        """(rows, targets) uint8 0/1 table of a slice of the features."""
        packed = np.ascontiguousarray(self.activity[rows]).view(np.uint8)
        return np.unpackbits(packed, axis=1, bitorder="little")[:, : self.n_targets]

    def ids(self) -> list[str]:
        """`chrom:start-end(strand)`, as bedtools getfasta -s names them."""
        return _id_text(self).decode().split("\n")[:-1]


def merge_intervals(
    intervals: Intervals,
    lengths: np.ndarray,
    n_targets: int,
    *,
    size: int = 600,
    overlap: int = 200,
) -> Features:
    """Basset's merged features from `intervals`; `lengths[c]` is chromosome c's length."""
    if size <= 0 or not 0 <= overlap < size:
        raise DataError(f"need a feature size > 0 and 0 <= merge overlap < size (got {size}, {overlap})")
    key_bits = (2 * len(intervals.chroms)).bit_length()
    point_bits = int(intervals.point.max(initial=0)).bit_length()
    sample_bits = max(1, (n_targets - 1).bit_length())
    if key_bits + point_bits > 63:
        raise DataError(f"peak positions up to {intervals.point.max()} do not fit 64-bit sort keys")
    if key_bits + point_bits + sample_bits > 63:  # many samples: sorted apart from the key
        sample_bits = 0
    codes = _pack(intervals.chrom, intervals.minus, intervals.point, intervals.sample, point_bits, sample_bits)
    if sample_bits:
        codes.sort()  # (chromosome, strand, point, sample), one integer each
        samples = np.zeros(0, np.int32)
    else:
        order = np.argsort(codes)
        codes, samples = codes[order], intervals.sample[order]
        del order
    words = max(1, -(-n_targets // 64))
    keys, mids, activity, dropped = _sweep(
        codes, samples, point_bits, sample_bits, lengths, size, size - overlap, words
    )
    if dropped:
        log.warning("dropped %d peaks on chromosomes shorter than %d bp", dropped, size)
    return Features(
        chroms=intervals.chroms,
        chrom=(keys >> 1).astype(np.int32),
        minus=(keys & 1).astype(bool),
        start=mids - size // 2,
        activity=activity,
        size=size,
        n_targets=n_targets,
        dropped=dropped,
    )


@numba.njit(cache=True)
def _pack(chrom, minus, point, sample, point_bits, sample_bits):
    """((chromosome * 2 + strand) << point_bits | point) << sample_bits | sample, per peak."""
    codes = np.empty(len(point), np.int64)
    for i in range(len(point)):
        code = ((np.int64(chrom[i]) * 2 + minus[i]) << point_bits) | point[i]
        codes[i] = (code << sample_bits) | sample[i] if sample_bits else code
    return codes


@numba.njit(cache=True)
def _sweep(codes, samples, point_bits, sample_bits, lengths, size, max_gap, words):
    """One pass over the peaks' sorted codes (_pack; the samples apart when sample_bits is 0):
    each becomes a window shifted inside its chromosome, identical windows collapse, and each
    group closes with Basset's greedy merge. Returns the features' (key, mid, activity, dropped)."""
    n = len(codes)
    half = size // 2
    out_key = np.empty(n, np.int64)
    out_mid = np.empty(n, np.int64)
    out_act = np.empty((n, words), np.uint64)
    rows = 0  # rows written; the open group is out[group:rows]
    group = 0
    dropped = 0
    last_key, last_start = -1, 0
    for i in range(n):
        value = codes[i] >> sample_bits
        sample = codes[i] & ((1 << sample_bits) - 1) if sample_bits else samples[i]
        key = value >> point_bits
        start = min(max((value & ((1 << point_bits) - 1)) - half, 0), lengths[key >> 1] - size)
        if start < 0:
            dropped += 1
            continue
        if key != last_key or start - last_start >= max_gap:
            rows = _greedy(out_mid, out_act, group, rows, max_gap)
            group = rows
        if rows == group or key != last_key or start != last_start:
            out_key[rows] = key
            out_mid[rows] = start + half
            for w in range(words):  # a row merged away may have left its bits here
                out_act[rows, w] = 0
            rows += 1
        out_act[rows - 1, sample >> 6] |= np.uint64(1) << np.uint64(sample & 63)
        last_key, last_start = key, start
    rows = _greedy(out_mid, out_act, group, rows, max_gap)
    return out_key[:rows].copy(), out_mid[:rows].copy(), out_act[:rows].copy(), dropped


@numba.njit(cache=True)
def _greedy(mid, act, first, end, max_gap):
    """Basset's merge of the group mid[first:end], in place: while the closest adjacent pair (the
    first on a tie) is <= max_gap apart (overlap >= -m), it becomes one feature at the midpoints'
    average weighted by 1 + active samples (rounded half up) with the union of activities.
    Returns the group's new end."""
    while end - first > 1:
        best = first
        for i in range(first + 1, end - 1):
            if mid[i + 1] - mid[i] < mid[best + 1] - mid[best]:
                best = i
        if mid[best + 1] - mid[best] > max_gap:
            break
        w_a, w_b = 1, 1
        for w in range(act.shape[1]):
            w_a += _bit_count(act[best, w])
            w_b += _bit_count(act[best + 1, w])
            act[best, w] |= act[best + 1, w]
        total = w_a + w_b
        # int(0.5 + weighted mean), in integers: floor((2 * sum + total) / (2 * total)).
        mid[best] = (2 * (w_a * mid[best] + w_b * mid[best + 1]) + total) // (2 * total)
        for i in range(best + 1, end - 1):
            mid[i] = mid[i + 1]
            for w in range(act.shape[1]):
                act[i, w] = act[i + 1, w]
        end -= 1
    return end


@numba.njit(cache=True)
def _bit_count(word):
    count = 0
    while word:
        word &= word - np.uint64(1)
        count += 1
    return count
