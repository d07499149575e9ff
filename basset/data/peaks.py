"""Peak files as Basset's preprocess_features.py reads them: BED or narrowPeak, plain or gzipped.

A file is read into one byte buffer and parsed by a compiled scan (numba): one pass over the
bytes, digits to integers, chromosome names to codes through a hash table, the peaks appended to
arrays kept from file to file (PeakArrays); 164 samples of 100k peaks take about 0.7 s. A file
the scan does not accept whole is parsed again by the numpy parser below, which names the first
bad line. Each peak is reduced to one point: its midpoint (start + end) // 2, or
with `summit` narrowPeak's summit (column 10, an offset from the start; -1, "no summit", falls
back to the midpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from basset.data.peak_scan import (
    CR,
    MAX_DIGITS,
    MAX_NAME,
    NEWLINE,
    SKIPPED_PREFIXES,
    STRAND_COLUMN,
    SUMMIT_COLUMN,
    TAB,
    count_lines,
    scan_lines,
)
from basset.errors import DataError
from basset.fileio import open_input


@dataclass
class Peaks:
    """One sample's peaks: chromosome (an index into `chroms`), point, strand."""

    chroms: list[str]
    chrom: np.ndarray  # (n,) int32
    point: np.ndarray  # (n,) int64
    minus: np.ndarray  # (n,) bool: strand '-' (anything else counts as '+', as Basset)


def read_peaks(path: str | Path, *, summit: bool = False) -> Peaks:
    peaks = PeakArrays()
    chroms = peaks.read(path, summit=summit)
    return Peaks(
        chroms, peaks.chrom[: peaks.size], peaks.point[: peaks.size], peaks.minus[: peaks.size]
    )


class PeakArrays:
    """The peaks of one file after another, appended to arrays that grow by doubling (or as
    reserved); each file's bytes are read into a buffer kept from file to file. (Fresh memory for
    every file costs more in page faults than parsing it.) Rows [0, size) are in use."""

    def __init__(self) -> None:
        self.size = 0
        self.chrom = np.empty(0, np.int32)  # codes of the file that put them there
        self.point = np.empty(0, np.int64)
        self.minus = np.empty(0, bool)
        self._text = np.empty(0, np.uint8)

    def read(self, path: str | Path, *, summit: bool = False) -> list[str]:
        """Append the peaks of `path`; returns its chromosomes, which its rows' codes index, in
        sorted order (as np.unique numbers them)."""
        path = Path(path)
        with open_input(path, "peak file") as handle:
            buf = self._read_bytes(handle)
        self.reserve(count_lines(buf))
        bad, rows, spans = scan_lines(buf, summit, self.chrom, self.point, self.minus, self.size)
        if bad:
            peaks = _read_checked(path, buf.tobytes(), buf, summit)
            rows = len(peaks.point)
            for column, values in zip(
                self.columns(), (peaks.chrom, peaks.point, peaks.minus), strict=True
            ):
                column[self.size : self.size + rows] = values
            self.size += rows
            return peaks.chroms
        names = [buf[lo:hi].tobytes() for lo, hi, _ in spans.tolist()]
        order = sorted(range(len(names)), key=names.__getitem__)
        rank = np.empty(len(names), dtype=np.int32)
        rank[order] = np.arange(len(names), dtype=np.int32)
        added = self.chrom[self.size : self.size + rows]
        np.take(rank, added, out=added)
        self.size += rows
        return [names[i].decode("utf-8", errors="replace") for i in order]

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.chrom, self.point, self.minus

    def keep(self, start: int, keep: np.ndarray) -> None:
        """Of the rows from `start` on (the last file's), keep those where `keep` is True."""
        kept = int(keep.sum())
        for column in self.columns():
            column[start : start + kept] = column[start : self.size][keep]
        self.size = start + kept

    def reserve(self, rows: int) -> None:
        """Room for `rows` more rows (memory reserved but never written costs nothing)."""
        if self.size + rows > len(self.point):
            capacity = max(self.size + rows, 2 * len(self.point))
            self.chrom, self.point, self.minus = (
                _grown(column, self.size, capacity) for column in self.columns()
            )

    def _read_bytes(self, handle: BinaryIO) -> np.ndarray:
        size = 0
        while True:
            if size == len(self._text):
                self._text = _grown(self._text, size, max(1 << 20, 2 * size))
            read = handle.readinto(self._text[size:].data)  # type: ignore[attr-defined]
            if not read:
                return self._text[:size]
            size += read


def _grown(array: np.ndarray, used: int, capacity: int) -> np.ndarray:
    grown = np.empty(capacity, array.dtype)
    grown[:used] = array[:used]
    return grown


def _read_checked(path: Path, data: bytes, buf: np.ndarray, summit: bool) -> Peaks:
    """The numpy parser: slower, but it names the first bad line."""
    starts, ends, numbers = _lines(buf, data)
    if len(starts) == 0:
        return Peaks([], np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, bool))
    tabs = np.flatnonzero(buf == TAB)
    first_tab = np.searchsorted(tabs, starts)
    n_tabs = np.searchsorted(tabs, ends) - first_tab

    def fail(row: int, message: str) -> DataError:
        return DataError(f"{path}: line {numbers[row]}: {message}")

    short = np.flatnonzero(n_tabs < 2)
    if len(short):
        raise fail(int(short[0]), "fewer than three columns (BED columns are tab-separated)")

    def field(column: int) -> tuple[np.ndarray, np.ndarray]:
        lo = starts if column == 0 else tabs[np.minimum(first_tab + column - 1, len(tabs) - 1)] + 1
        hi = np.where(n_tabs > column, tabs[np.minimum(first_tab + column, len(tabs) - 1)], ends)
        return lo, hi

    def coordinate(column: int, what: str, allow: bytes | None = None) -> np.ndarray:
        lo, hi = field(column)
        values, ok = parse_whole_numbers(buf, lo, hi)
        if allow is not None:
            ok |= _equals(buf, lo, hi, allow)
        bad = np.flatnonzero(~ok)
        if len(bad):
            row = int(bad[0])
            text = data[lo[row] : hi[row]].decode("utf-8", errors="replace")
            kind = (
                "negative" if text.startswith("-") and text[1:].isdigit() else "not a whole number"
            )
            raise fail(row, f"{what} {text!r} is {kind}")
        return values

    start = coordinate(1, "start")
    end = coordinate(2, "end")
    reversed_rows = np.flatnonzero(start > end)
    if len(reversed_rows):
        row = int(reversed_rows[0])
        raise fail(row, f"start {start[row]} is after end {end[row]}")
    point = (start + end) // 2
    if summit:
        no_summit = np.flatnonzero(n_tabs < SUMMIT_COLUMN)
        if len(no_summit):
            raise fail(int(no_summit[0]), "--summit needs narrowPeak's 10th column (the summit)")
        offset = coordinate(SUMMIT_COLUMN, "summit", allow=b"-1")
        lo, hi = field(SUMMIT_COLUMN)
        called = ~_equals(buf, lo, hi, b"-1")
        outside = np.flatnonzero(called & (offset > end - start))
        if len(outside):
            raise fail(int(outside[0]), f"summit offset {offset[outside[0]]} is beyond the peak")
        point = np.where(called, start + offset, point)
    lo, hi = field(STRAND_COLUMN)
    minus = (n_tabs >= STRAND_COLUMN) & _equals(buf, lo, hi, b"-")
    chroms, chrom = _names(buf, *field(0), fail)
    return Peaks(chroms, chrom, point, minus)


def _lines(buf: np.ndarray, data: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, 1-based line number) of every line with content; CR of CRLF dropped;
    comment, track and browser lines skipped."""
    if len(buf) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    newlines = np.flatnonzero(buf == NEWLINE)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(buf)]])
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == CR))
    numbers = np.arange(1, len(starts) + 1)
    keep = ends > starts
    candidates = np.flatnonzero(
        keep & np.isin(buf[np.minimum(starts, len(buf) - 1)], [35, 98, 116])
    )
    for row in candidates.tolist():  # '#', 'b', 't': few lines, checked in Python
        if data[starts[row] : starts[row] + 7].startswith(SKIPPED_PREFIXES):
            keep[row] = False
    return starts[keep], ends[keep], numbers[keep]


def parse_whole_numbers(
    buf: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits buf[lo:hi] of every row -> (values int64, ok); ok is False for an empty
    field, any non-digit, or more than MAX_DIGITS digits."""
    width = hi - lo
    ok = (width > 0) & (width <= MAX_DIGITS)
    values = np.zeros(len(lo), dtype=np.int64)
    for j in range(min(int(width.max(initial=0)), MAX_DIGITS)):
        inside = width > j
        digit = buf[np.minimum(lo + j, len(buf) - 1)].astype(np.int64) - 48
        ok &= ~inside | ((digit >= 0) & (digit <= 9))
        values = np.where(inside, values * 10 + digit, values)
    return values, ok


def _equals(buf: np.ndarray, lo: np.ndarray, hi: np.ndarray, text: bytes) -> np.ndarray:
    same = (hi - lo) == len(text)
    for j, byte in enumerate(text):
        same &= buf[np.minimum(lo + j, len(buf) - 1)] == byte
    return same


def _names(
    buf: np.ndarray, lo: np.ndarray, hi: np.ndarray, fail: Callable[[int, str], DataError]
) -> tuple[list[str], np.ndarray]:
    width = hi - lo
    if (width == 0).any():
        raise fail(int(np.flatnonzero(width == 0)[0]), "empty chromosome name")
    longest = int(width.max())
    if longest > MAX_NAME:
        raise fail(int(np.argmax(width)), f"chromosome name longer than {MAX_NAME} characters")
    columns = np.arange(longest)
    inside = columns < width[:, None]
    matrix = np.where(inside, buf[np.minimum(lo[:, None] + columns, len(buf) - 1)], 0).astype(
        np.uint8
    )
    names, inverse = np.unique(matrix.view(f"S{longest}").ravel(), return_inverse=True)
    return [name.decode("utf-8", errors="replace") for name in names], inverse.astype(np.int32)
