"""Peak files as Basset's preprocess_features.py reads them: BED or narrowPeak, plain or gzipped.

A file is parsed as one byte buffer by a compiled scan (numba): one pass over the bytes, digits
to integers, chromosome names to codes through a hash table; 164 samples of 100k peaks take about
a second. A file the scan does not accept whole is parsed again by the numpy parser below, which
names the first bad line. Each peak is reduced to one point: its midpoint (start + end) // 2, or
with `summit` narrowPeak's summit (column 10, an offset from the start; -1, "no summit", falls
back to the midpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from basset.errors import DataError
from basset.fileio import open_input

TAB, NEWLINE, CR = 9, 10, 13
MAX_DIGITS = 12  # coordinates below 10**12: far beyond any chromosome
MAX_NAME = 255
MAX_NAMES = 32_768  # chromosomes a file may name for the compiled scan (more: the numpy parser)
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
    scanned = _scan(buf, summit)
    if scanned is None:
        return _read_checked(path, data, buf, summit)
    chrom, point, minus, name_lo, name_hi = scanned
    names = [data[lo:hi] for lo, hi in zip(name_lo.tolist(), name_hi.tolist(), strict=True)]
    order = sorted(range(len(names)), key=names.__getitem__)  # codes in name order, as np.unique
    rank = np.empty(len(names), dtype=np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    chroms = [names[i].decode("utf-8", errors="replace") for i in order]
    return Peaks(chroms, rank[chrom] if len(names) else chrom, point, minus)


def _scan(buf: np.ndarray, summit: bool) -> tuple[np.ndarray, ...] | None:
    """(chrom code, point, minus, name start, name end) of a file without a bad line, else None."""
    result = _scan_lines(buf, summit)
    return None if result[0] else result[1:]


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


@numba.njit(cache=True)
def _skipped(buf: np.ndarray, lo: int, hi: int) -> bool:
    """A track or browser line."""
    for text in (b"track", b"browser"):
        if hi - lo >= len(text):
            same = True
            for j in range(len(text)):
                same &= buf[lo + j] == text[j]
            if same:
                return True
    return False


@numba.njit(cache=True)
def _whole_number(buf: np.ndarray, lo: int, hi: int) -> int:
    """buf[lo:hi] as a whole number of 1 to MAX_DIGITS digits, else -1."""
    if hi <= lo or hi - lo > MAX_DIGITS:
        return -1
    value = 0
    for j in range(lo, hi):
        digit = buf[j] - 48
        if digit < 0 or digit > 9:
            return -1
        value = value * 10 + digit
    return value


@numba.njit(cache=True)
def _slot(
    buf: np.ndarray, lo: int, hi: int, table: np.ndarray, name_lo: np.ndarray, name_hi: np.ndarray
) -> np.int64:
    """Slot of the name buf[lo:hi] in an open-addressing table of codes (FNV-1a hash, linear
    probing): the slot holding its code, or the empty one where it goes."""
    h = np.uint64(14695981039346656037)
    for j in range(lo, hi):
        h = (h ^ np.uint64(buf[j])) * np.uint64(1099511628211)
    mask = len(table) - 1
    slot = np.int64(h & np.uint64(mask))
    while table[slot] >= 0:
        code = table[slot]
        a, b = name_lo[code], name_hi[code]
        if b - a == hi - lo:
            same = True
            for j in range(hi - lo):
                if buf[a + j] != buf[lo + j]:
                    same = False
                    break
            if same:
                return slot
        slot = (slot + 1) & mask
    return slot


@numba.njit(cache=True)
def _scan_lines(buf: np.ndarray, summit: bool):
    """One pass over the file's bytes with the numpy parser's rules; the first element is True
    when a line is bad (the numpy parser then names it) or the file names more than MAX_NAMES
    chromosomes. (Fixed-size tables: arrays reassigned inside the loop make it twice as slow.)"""
    n = len(buf)
    lines = 1 + np.count_nonzero(buf == NEWLINE)
    chrom = np.empty(lines, np.int32)
    point = np.empty(lines, np.int64)
    minus = np.zeros(lines, np.bool_)
    table = np.full(2 * MAX_NAMES, -1, np.int64)  # at most half full
    name_lo = np.empty(MAX_NAMES, np.int64)
    name_hi = np.empty(MAX_NAMES, np.int64)
    n_names = 0
    tabs = np.empty(SUMMIT_COLUMN + 1, np.int64)
    rows = 0
    pos = 0
    while pos < n:
        n_tabs = 0
        end = pos
        while end < n and buf[end] != NEWLINE:
            if buf[end] == TAB:
                if n_tabs <= SUMMIT_COLUMN:
                    tabs[n_tabs] = end
                n_tabs += 1
            end += 1
        following = end + 1
        if end > pos and buf[end - 1] == CR:
            end -= 1
        if end == pos or buf[pos] == 35 or (buf[pos] in (98, 116) and _skipped(buf, pos, end)):
            pos = following
            continue
        if n_tabs < 2 or tabs[0] == pos or tabs[0] - pos > MAX_NAME:
            return True, chrom, point, minus, name_lo, name_hi
        first = _whole_number(buf, tabs[0] + 1, tabs[1])
        last = _whole_number(buf, tabs[1] + 1, tabs[2] if n_tabs > 2 else end)
        if first < 0 or last < 0 or first > last:
            return True, chrom, point, minus, name_lo, name_hi
        point[rows] = (first + last) // 2
        if summit:
            if n_tabs < SUMMIT_COLUMN:
                return True, chrom, point, minus, name_lo, name_hi
            lo, hi = tabs[SUMMIT_COLUMN - 1] + 1, tabs[SUMMIT_COLUMN] if n_tabs > SUMMIT_COLUMN else end
            if not (hi - lo == 2 and buf[lo] == 45 and buf[lo + 1] == 49):  # "-1": no summit
                offset = _whole_number(buf, lo, hi)
                if offset < 0 or offset > last - first:
                    return True, chrom, point, minus, name_lo, name_hi
                point[rows] = first + offset
        if n_tabs >= STRAND_COLUMN:
            hi = tabs[STRAND_COLUMN] if n_tabs > STRAND_COLUMN else end
            minus[rows] = hi - tabs[STRAND_COLUMN - 1] == 2 and buf[hi - 1] == 45
        slot = _slot(buf, pos, tabs[0], table, name_lo, name_hi)
        if table[slot] < 0:  # a new name
            if n_names == MAX_NAMES:
                return True, chrom, point, minus, name_lo, name_hi
            table[slot] = n_names
            name_lo[n_names], name_hi[n_names] = pos, tabs[0]
            n_names += 1
        chrom[rows] = table[slot]
        rows += 1
        pos = following
    return False, chrom[:rows], point[:rows], minus[:rows], name_lo[:n_names], name_hi[:n_names]

