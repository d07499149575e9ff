"""Peak files as Basset's preprocess_features.py reads them: BED or narrowPeak, plain or gzipped.

A file is parsed as one byte buffer with numpy (line and tab offsets, digits to integers), not
line by line in Python: 164 samples of 100k peaks take seconds. Each peak is reduced to one
point: its midpoint (start + end) // 2, or with `summit` narrowPeak's summit (column 10, an
offset from the start; -1, "no summit", falls back to the midpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basset.errors import DataError
from basset.fileio import open_input

TAB, NEWLINE, CR = 9, 10, 13
MAX_DIGITS = 12  # coordinates below 10**12: far beyond any chromosome
MAX_NAME = 255
SKIPPED_PREFIXES = (b"#", b"track", b"browser")
STRAND_COLUMN, SUMMIT_COLUMN = 5, 9


@dataclass
class Peaks:
    """One sample's peaks: chromosome (an index into `chroms`), point, strand."""

    chroms: list[str]
    chrom: np.ndarray  # (n,) int32
    point: np.ndarray  # (n,) int64
    minus: np.ndarray  # (n,) bool: strand '-' (anything else counts as '+', as Basset)


def read_peaks(path: str | Path, *, summit: bool = False) -> Peaks:
    path = Path(path)
    with open_input(path, "peak file") as handle:
        data = handle.read()
    buf = np.frombuffer(data, dtype=np.uint8)
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
            kind = "negative" if text.startswith("-") and text[1:].isdigit() else "not a whole number"
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
    candidates = np.flatnonzero(keep & np.isin(buf[np.minimum(starts, len(buf) - 1)], [35, 98, 116]))
    for row in candidates.tolist():  # '#', 'b', 't': few lines, checked in Python
        if data[starts[row] : starts[row] + 7].startswith(SKIPPED_PREFIXES):
            keep[row] = False
    return starts[keep], ends[keep], numbers[keep]


def parse_whole_numbers(buf: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    matrix = np.where(inside, buf[np.minimum(lo[:, None] + columns, len(buf) - 1)], 0).astype(np.uint8)
    names, inverse = np.unique(matrix.view(f"S{longest}").ravel(), return_inverse=True)
    return [name.decode("utf-8", errors="replace") for name in names], inverse.astype(np.int32)
