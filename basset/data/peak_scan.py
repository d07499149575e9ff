"""The compiled scan of a peak file (numba): one pass over its bytes with the numpy parser's rules
(basset.data.peaks), digits read as the bytes go by and chromosome names hashed into a fixed
table."""

from __future__ import annotations

import numba
import numpy as np

TAB, NEWLINE, CR = 9, 10, 13
MAX_DIGITS = 12  # coordinates below 10**12: far beyond any chromosome
MAX_NAME = 255
MAX_NAMES = 32_768  # chromosomes a file may name for the compiled scan (more: the numpy parser)
SKIPPED_PREFIXES = (b"#", b"track", b"browser")
STRAND_COLUMN, SUMMIT_COLUMN = 5, 9


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
def _digits(buf: np.ndarray, pos: int) -> tuple[int, int]:
    """The whole number of 1 to MAX_DIGITS digits at buf[pos:] (-1 if none or more) and the
    position after its digits."""
    value, end = 0, pos
    while end < len(buf):
        digit = buf[end] - np.uint8(48)  # wraps around below '0'
        if digit > 9:
            break
        value = value * 10 + digit
        end += 1
    return (value if 0 < end - pos <= MAX_DIGITS else -1), end


@numba.njit(cache=True)
def _whole_number(buf: np.ndarray, lo: int, hi: int) -> int:
    """buf[lo:hi] as a whole number of 1 to MAX_DIGITS digits, else -1."""
    value, end = _digits(buf, lo)
    return value if end == hi else -1


@numba.njit(cache=True)
def _slot(
    buf: np.ndarray, lo: int, hi: int, word: np.uint64, table: np.ndarray, names: np.ndarray
) -> np.int64:
    """Slot of the name buf[lo:hi] in an open-addressing table of codes (linear probing): the
    slot holding its code, or the empty one where it goes. `word`: the name's last 8 bytes, which
    with its length tell names of up to 8 bytes apart; names[code]: (start, end, word)."""
    mask = len(table) - 1
    h = (word ^ np.uint64(hi - lo)) * np.uint64(0x9E3779B97F4A7C15)
    slot = np.int64((h >> np.uint64(40)) & np.uint64(mask))
    while table[slot] >= 0:
        code = table[slot]
        a, b = names[code, 0], names[code, 1]
        if np.uint64(names[code, 2]) == word and b - a == hi - lo:
            same = True
            for j in range(hi - lo - 8):  # bytes before the last 8
                if buf[a + j] != buf[lo + j]:
                    same = False
                    break
            if same:
                return slot
        slot = (slot + 1) & mask
    return slot


@numba.njit(cache=True)
def _line_end(buf: np.ndarray, pos: int) -> int:
    while pos < len(buf) and buf[pos] != NEWLINE:
        pos += 1
    return pos


@numba.njit(cache=True)
def count_lines(buf: np.ndarray) -> int:
    lines = 1
    for byte in buf:  # a loop: np.count_nonzero(buf == NEWLINE) takes three times as long
        lines += byte == NEWLINE
    return lines


@numba.njit(cache=True)
def scan_lines(
    buf: np.ndarray, summit: bool, chrom: np.ndarray, point: np.ndarray, minus: np.ndarray, at: int
):
    """One pass over the file's bytes with the numpy parser's rules, the name hashed and the
    numbers' digits read as the bytes go by; the peaks go to rows at, at + 1, ... of chrom, point
    and minus (room for count_lines(buf) rows). Returns (bad, rows, (start, end, _) of each
    name), bad True when a line is bad (the numpy parser then names it) or the file names more
    than MAX_NAMES chromosomes. (Fixed-size tables: arrays reassigned inside the loop make it
    twice as slow.)"""
    n = len(buf)
    table = np.full(2 * MAX_NAMES, -1, np.int64)  # at most half full
    names = np.empty((MAX_NAMES, 3), np.int64)  # start, end, last 8 bytes
    n_names = 0
    tabs = np.empty(SUMMIT_COLUMN + 1, np.int64)
    row = at
    pos = 0
    while pos < n:
        first_byte = buf[pos]
        if first_byte == NEWLINE:
            pos += 1
            continue
        if first_byte in (35, CR, 98, 116):  # '#', CR, 'b', 't': maybe a line to skip
            end = _line_end(buf, pos)
            stop = end - 1 if end > pos and buf[end - 1] == CR else end
            if stop == pos or first_byte == 35 or _skipped(buf, pos, stop):
                pos = end + 1
                continue
        word = np.uint64(0)  # the name's last 8 bytes, up to the first tab
        j = pos
        while j < n and buf[j] != TAB and buf[j] != NEWLINE:
            word = (word << np.uint64(8)) | np.uint64(buf[j])
            j += 1
        if j == n or buf[j] != TAB or j == pos or j - pos > MAX_NAME:
            return True, 0, names
        tabs[0] = j
        first, j = _digits(buf, j + 1)
        if first < 0 or j == n or buf[j] != TAB:
            return True, 0, names
        tabs[1] = j
        last, j = _digits(buf, j + 1)
        if last < 0 or first > last:
            return True, 0, names
        n_tabs = 2
        if j < n and buf[j] == TAB:  # more columns: their tabs, then the line's end
            end = j
            while end < n and buf[end] != NEWLINE:
                if buf[end] == TAB:
                    if n_tabs <= SUMMIT_COLUMN:
                        tabs[n_tabs] = end
                    n_tabs += 1
                end += 1
            following = end + 1
            if buf[end - 1] == CR:
                end -= 1
        else:  # the end column ends the line, with or without CR
            end = j
            if j < n and buf[j] == CR:
                j += 1
            if j < n and buf[j] != NEWLINE:
                return True, 0, names
            following = j + 1
        point[row] = (first + last) // 2
        if summit:
            if n_tabs < SUMMIT_COLUMN:
                return True, 0, names
            lo, hi = (
                tabs[SUMMIT_COLUMN - 1] + 1,
                tabs[SUMMIT_COLUMN] if n_tabs > SUMMIT_COLUMN else end,
            )
            if not (hi - lo == 2 and buf[lo] == 45 and buf[lo + 1] == 49):  # "-1": no summit
                offset = _whole_number(buf, lo, hi)
                if offset < 0 or offset > last - first:
                    return True, 0, names
                point[row] = first + offset
        minus[row] = False
        if n_tabs >= STRAND_COLUMN:
            hi = tabs[STRAND_COLUMN] if n_tabs > STRAND_COLUMN else end
            minus[row] = hi - tabs[STRAND_COLUMN - 1] == 2 and buf[hi - 1] == 45
        slot = _slot(buf, pos, tabs[0], word, table, names)
        if table[slot] < 0:  # a new name
            if n_names == MAX_NAMES:
                return True, 0, names
            table[slot] = n_names
            names[n_names, 0], names[n_names, 1], names[n_names, 2] = pos, tabs[0], np.int64(word)
            n_names += 1
        chrom[row] = table[slot]
        row += 1
        pos = following
    return False, row - at, names[:n_names]
