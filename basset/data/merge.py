"""Basset's merge of peaks into features (docs/basset-semantics.md §4), compiled with numba.

One sort of every peak packed into one integer, then one sweep that places the windows,
collapses identical ones into bit sets of samples (one bit per sample, in uint64 words) and runs
the greedy merge on each group as it closes, in time linear in the group (_greedy). The pipeline
around it is basset/data/features.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numba
import numpy as np

from basset.errors import DataError

log = logging.getLogger(__name__)

PREV, NEXT, WAITING, STACK = range(4)  # the columns of _greedy's work space


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
        raise DataError(
            f"need a feature size > 0 and 0 <= merge overlap < size (got {size}, {overlap})"
        )
    key_bits = (2 * len(intervals.chroms)).bit_length()
    point_bits = int(intervals.point.max(initial=0)).bit_length()
    sample_bits = max(1, (n_targets - 1).bit_length())
    if key_bits + point_bits > 63:
        raise DataError(f"peak positions up to {intervals.point.max()} do not fit 64-bit sort keys")
    if key_bits + point_bits + sample_bits > 63:  # many samples: sorted apart from the key
        sample_bits = 0
    codes = _pack(
        intervals.chrom, intervals.minus, intervals.point, intervals.sample, point_bits, sample_bits
    )
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
    group closes with Basset's greedy merge. Returns the features' (key, mid, activity, dropped).
    The arrays have a row per peak, but only the rows of the features so far and of the open
    group are ever written, and memory never written is never resident: the activity returned
    (a view) is all the activity memory there is."""
    n = len(codes)
    half = size // 2
    out_key = np.empty(n, np.int64)
    out_mid = np.empty(n, np.int64)
    out_act = np.empty((n, words), np.uint64)
    work = np.empty((n, 4), np.int64)  # _greedy's; only the rows of the largest group are touched
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
            rows = _greedy(out_mid, out_act, group, rows, max_gap, work)
            group = rows
        if rows == group or key != last_key or start != last_start:
            out_key[rows] = key
            out_mid[rows] = start + half
            for w in range(words):  # a row merged away may have left its bits here
                out_act[rows, w] = 0
            rows += 1
        out_act[rows - 1, sample >> 6] |= np.uint64(1) << np.uint64(sample & 63)
        last_key, last_start = key, start
    rows = _greedy(out_mid, out_act, group, rows, max_gap, work)
    return out_key[:rows], out_mid[:rows], out_act[:rows], dropped  # no copies: see above


@numba.njit(cache=True)
def _greedy(mid, act, first, end, max_gap, work):
    """Basset's merge of the group mid[first:end], in place: while the closest adjacent pair (the
    first on a tie) is <= max_gap apart (overlap >= -m), it becomes one feature at the midpoints'
    average weighted by 1 + active samples (rounded half up) with the union of activities.
    Returns the group's new end.

    In O(g), not O(g^2): a merged midpoint lies between the two, so a merge only widens the
    distances to its neighbours; a pair closer than the pair on its left and no farther than the
    one on its right is then merged by the greedy before either of those, and with the same
    result, whatever is merged elsewhere meanwhile. So such pairs are merged as they are found,
    left to right, and after each merge the pairs whose standing it changes are looked at again
    (a stack). work[k]: previous and next row of row first + k (next -1: merged away), whether
    it waits on the stack, and the stack's entry k."""
    g = end - first
    if g < 2:
        return end
    for k in range(g):
        work[k, PREV], work[k, NEXT], work[k, WAITING] = k - 1, k + 1, 0
    waiting = 0
    cursor = 0  # the pairs from here on have not been looked at yet
    while waiting or cursor < g - 1:
        if waiting:
            waiting -= 1
            left = work[waiting, STACK]
            work[left, WAITING] = 0
        else:
            left = cursor
            cursor += 1
        right = work[left, NEXT]
        if right < 0 or right >= g:  # merged away, or the last row
            continue
        gap = mid[first + right] - mid[first + left]
        before, after = work[left, PREV], work[right, NEXT]
        if (
            gap > max_gap
            or (before >= 0 and mid[first + left] - mid[first + before] <= gap)
            or (after < g and mid[first + after] - mid[first + right] < gap)
        ):
            continue
        _merge_pair(mid, act, first + left, first + right)
        work[left, NEXT], work[right, NEXT] = after, -1
        if after < g:
            work[after, PREV] = left
        # the pairs on either side changed distance, and those beyond them changed neighbour
        for changed in (work[before, PREV] if before >= 0 else -1, before, left, after):
            if 0 <= changed < cursor and not work[changed, WAITING]:
                work[changed, WAITING] = 1
                work[waiting, STACK] = changed
                waiting += 1
    k, row = 0, first  # the rows left (row first is never merged away), moved together
    while k < g:
        if row != first + k:
            mid[row] = mid[first + k]
            for w in range(act.shape[1]):
                act[row, w] = act[first + k, w]
        row += 1
        k = work[k, NEXT]
    return row


@numba.njit(cache=True)
def _merge_pair(mid, act, a, b):
    """Row b into row a: the midpoints' average weighted by 1 + active samples, rounded half
    up, and the union of the activities."""
    w_a, w_b = 1, 1
    for w in range(act.shape[1]):
        w_a += _bit_count(act[a, w])
        w_b += _bit_count(act[b, w])
        act[a, w] |= act[b, w]
    total = w_a + w_b
    # int(0.5 + weighted mean), in integers: floor((2 * sum + total) / (2 * total)).
    mid[a] = (2 * (w_a * mid[a] + w_b * mid[b]) + total) // (2 * total)


@numba.njit(cache=True)
def _bit_count(word):
    """Set bits of a uint64 (SWAR)."""
    word = word - ((word >> np.uint64(1)) & np.uint64(0x5555555555555555))
    word = (word & np.uint64(0x3333333333333333)) + (
        (word >> np.uint64(2)) & np.uint64(0x3333333333333333)
    )
    word = (word + (word >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((word * np.uint64(0x0101010101010101)) >> np.uint64(56))
