"""The one FASTA reader of basset-preprocess, basset-predict and basset-sat: plain or gzipped
(bgzip too), a UTF-8 byte-order mark skipped, multi-line records."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

from basset.device import available_memory, human_bytes
from basset.errors import DataError
from basset.fileio import open_input

PIECE = 1 << 20  # bytes of a line read at once


def read_fasta(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Stream (id, sequence) records; the id is the first word after '>'. Lines are read in
    pieces of at most PIECE bytes, and the sequences read so far (which the readers keep, as
    bytes or codes) are bounded by the memory available when reading starts: a record or a file
    too large for it is refused while it streams, before it is held."""
    path = Path(path)
    budget = available_memory()
    header: str | None = None
    parts: list[bytes] = []
    held = size = lineno = 0  # bytes of the records given, of this one; lines started
    line_start, in_header = True, False
    with open_input(path, "FASTA file") as handle:
        for piece in iter(partial(handle.readline, PIECE), b""):
            starts, line_start = line_start, piece[-1:] == b"\n"
            lineno += starts
            if starts and piece[:1] == b">":
                if header is not None:
                    yield header, b"".join(parts)
                    held, parts, size = held + size, [], 0
                header, in_header = _record_id(path, lineno, piece), not line_start
            elif in_header:  # the rest of a header line longer than a piece
                in_header = not line_start
            elif header is None:
                if piece.strip():
                    raise DataError(f"{path}: line {lineno}: not FASTA (text before the first '>')")
            else:
                piece = piece.strip()
                parts.append(piece)
                size += len(piece)
                if 3 * size + held > budget:  # its lines, then joined; the records before it
                    raise DataError(
                        f"{path}: line {lineno}: the sequences read so far ({human_bytes(held)} "
                        f"before {header}, {human_bytes(size)} of it) need more than the "
                        f"{human_bytes(budget)} of memory available"
                    )
    if header is not None:
        yield header, b"".join(parts)


def _record_id(path: Path, lineno: int, header: bytes) -> str:
    words = header[1:].split()
    if not words:
        raise DataError(f"{path}: line {lineno}: FASTA header without an id")
    return words[0].decode("utf-8", errors="replace")


def read_fasta_all(path: str | Path) -> tuple[list[str], list[bytes]]:
    """Every record at once, as (ids, sequences); a file without records is an error."""
    ids: list[str] = []
    seqs: list[bytes] = []
    for name, seq in read_fasta(path):
        ids.append(name)
        seqs.append(seq)
    if not ids:
        raise DataError(f"{path}: no FASTA records")
    return ids, seqs
