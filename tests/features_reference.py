"""Basset's preprocess_features.py merge written the straightforward way, one Python object per
peak: the oracle of tests/test_features.py and the baseline of benchmarks/features_throughput.py.

Input: (chrom, strand, point, sample) tuples; output: (chrom, strand, start, end, sorted samples)
per feature, chromosomes/strands in sorted order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable


class Peak:
    def __init__(self, start: int, end: int, act: set[int]) -> None:
        self.start, self.end, self.act = start, end, act

    def place(self, mid: int, size: int, chrom_len: int) -> None:
        self.start = max(0, mid - size // 2)
        self.end = self.start + size
        if self.end > chrom_len:
            self.end = chrom_len
            self.start = self.end - size

    def mid(self) -> int:
        return (self.start + self.end) // 2


def merge_group(peaks: list[Peak], size: int, overlap: int, chrom_len: int) -> list[Peak]:
    """The adjacent pair overlapping most (first on ties) merges while that overlap >= -m."""
    while len(peaks) > 1:
        best, best_overlap = 0, peaks[0].end - peaks[1].start
        for i in range(1, len(peaks) - 1):
            if peaks[i].end - peaks[i + 1].start > best_overlap:
                best, best_overlap = i, peaks[i].end - peaks[i + 1].start
        if best_overlap < overlap:
            break
        a, b = peaks[best], peaks[best + 1]
        wa, wb = 1 + len(a.act), 1 + len(b.act)
        mid = int(0.5 + (a.mid() * wa + b.mid() * wb) / (wa + wb))
        a.place(mid, size, chrom_len)
        a.act = a.act | b.act
        del peaks[best + 1]
    return peaks


def reference_merge(
    points: Iterable[tuple[str, str, int, int]], lengths: dict[str, int], size: int, overlap: int
) -> list[tuple[str, str, int, int, list[int]]]:
    by_key: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for chrom, strand, point, sample in points:
        by_key[chrom, strand].append((point, sample))
    out = []
    for (chrom, strand), items in sorted(by_key.items()):
        if lengths[chrom] < size:
            continue
        group: list[Peak] = []
        open_end = 0
        for point, sample in sorted(items, key=lambda item: item[0]):
            peak = Peak(point, point + 1, {sample})
            peak.place(point, size, lengths[chrom])
            if group and open_end - overlap <= peak.start:
                out.extend(_rows(chrom, strand, merge_group(group, size, overlap, lengths[chrom])))
                group = []
            if not group:
                open_end = peak.end
            group.append(peak)
            open_end = max(open_end, peak.end)
        out.extend(_rows(chrom, strand, merge_group(group, size, overlap, lengths[chrom])))
    return out


def _rows(chrom: str, strand: str, peaks: list[Peak]) -> list[tuple[str, str, int, int, list[int]]]:
    return [(chrom, strand, p.start, p.end, sorted(p.act)) for p in peaks]
