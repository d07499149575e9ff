"""A genome's `.fai` index checked against the FASTA itself, not against its modification time.

pyfaidx trusts an index that is newer than its FASTA; after `cp -p`, `tar` or `rsync -t` an old
index of a re-wrapped (or another) genome is newer, and every sequence read through it is shifted
or cut. The check here reads a few bytes per record where the index says they are: the header
line of the record's name just before its offset, line ends where its line lengths put them,
the record's last base followed by a line end, and nothing but line ends between one record's
end and the next header (or the end of the file). A consistent index passes; one that disagrees
with the file is named with its first disagreement, so that the genome can rebuild it.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from Bio import bgzf

ReadAt = Callable[[int, int], bytes]  # (offset in the uncompressed FASTA, size) -> bytes
MAX_HEADER = 1 << 16  # bytes between two records (a header line and blank lines)
BLANK = b" \t\r\n"


@dataclass(frozen=True)
class FaiRecord:
    name: str
    length: int  # bases
    offset: int  # of the first base
    line_bases: int
    line_bytes: int  # with the line end

    @property
    def end(self) -> int:
        """Offset just after the last base."""
        if self.length == 0:
            return self.offset
        lines = (self.length - 1) // self.line_bases
        return self.offset + lines * self.line_bytes + self.length - lines * self.line_bases


def read_fai(path: Path) -> list[FaiRecord]:
    """The index's records; ValueError when it is not a .fai."""
    records = []
    for line in path.read_text(encoding="ascii").splitlines():
        name, *numbers = line.split("\t")[:5]
        length, offset, bases, width = (int(v) for v in numbers)
        records.append(FaiRecord(name, length, offset, bases, width))
    return records


def index_problem(fasta: Path, fai: Path, gzi: Path | None = None) -> str | None:
    """What is wrong with the index `fai` of `fasta` (bgzipped: read through its `gzi`); None if
    nothing."""
    try:
        records = read_fai(fai)
    except (OSError, ValueError, UnicodeDecodeError):
        return "it is not a readable .fai index"
    if not records:
        return "it lists no sequence"
    try:
        read_at, close = plain_reader(fasta) if gzi is None else bgzf_reader(fasta, gzi)
    except (OSError, ValueError, struct.error) as err:
        return f"its .gzi cannot be read ({err})"
    try:
        return _records_problem(records, read_at)
    except (OSError, ValueError, EOFError) as err:  # a stale .gzi, a truncated file
        return f"the FASTA cannot be read at the offsets the index gives ({err})"
    finally:
        close()


def _records_problem(records: list[FaiRecord], read_at: ReadAt) -> str | None:
    previous_end = 0
    for record in records:
        problem = _record_problem(record, previous_end, read_at)
        if problem:
            return f"{record.name}: {problem}"
        previous_end = record.end
    if read_at(previous_end, MAX_HEADER).strip(BLANK):
        return f"the file goes on after {records[-1].name}, its last sequence"
    return None


def _record_problem(record: FaiRecord, previous_end: int, read_at: ReadAt) -> str | None:
    line_end = record.line_bytes - record.line_bases
    if record.line_bases <= 0 or line_end not in (1, 2) or record.offset < previous_end:
        return "line lengths or offset impossible"
    if record.offset - previous_end > MAX_HEADER:
        return "more than a header line before its offset"
    header = read_at(previous_end, record.offset - previous_end).lstrip(BLANK)
    if not header.startswith(b">") or not header.endswith(b"\n") or b"\n" in header[:-1]:
        return "no header line just before its offset"
    words = header[1:].split()
    if not words or words[0].decode("utf-8", errors="replace") != record.name:
        return f"the header before its offset is not its own ({header[:40]!r})"
    if record.length == 0:
        return None
    last_line = record.offset + (record.length - 1) // record.line_bases * record.line_bytes
    ends = [last_line - line_end] if last_line > record.offset else []
    if record.length > record.line_bases:
        ends.append(record.offset + record.line_bases)
    if any(read_at(at, line_end) != b"\r\n"[-line_end:] for at in ends):
        return f"its lines are not {record.line_bases} bases long"
    after = read_at(record.end - 1, 3)
    if not after[:1].strip(BLANK + b">") or after[1:2] not in (b"", b"\n", b"\r"):
        return f"it is not {record.length} bases long"
    return None


def plain_reader(path: Path) -> tuple[ReadAt, Callable[[], None]]:
    """Reads at offsets of a plain file, and its close."""
    handle = path.open("rb")

    def read_at(offset: int, size: int) -> bytes:
        handle.seek(offset)
        return handle.read(size)

    return read_at, handle.close


def bgzf_reader(path: Path, gzi: Path) -> tuple[ReadAt, Callable[[], None]]:
    """Reads at uncompressed offsets of a bgzipped file through its .gzi index (htslib's
    format: a count, then (compressed, uncompressed) offsets of the blocks, little-endian)."""
    raw = gzi.read_bytes()
    (count,) = struct.unpack_from("<Q", raw)
    pairs = struct.unpack_from(f"<{2 * count}Q", raw, 8)
    compressed, uncompressed = [0, *pairs[0::2]], [0, *pairs[1::2]]
    reader = bgzf.BgzfReader(str(path), "rb")

    def read_at(offset: int, size: int) -> bytes:
        block = bisect.bisect_right(uncompressed, offset) - 1
        within = offset - uncompressed[block]
        reader.seek(bgzf.make_virtual_offset(compressed[block], within))
        return bytes(reader.read(size))

    return read_at, reader.close
