"""The one FASTA reader of basset-preprocess, basset-predict and basset-sat: plain or gzipped
(bgzip too), a UTF-8 byte-order mark skipped, multi-line records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from basset.errors import DataError
from basset.fileio import open_input


def read_fasta(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Stream (id, sequence) records; the id is the first word after '>'."""
    path = Path(path)
    header: str | None = None
    parts: list[bytes] = []
    with open_input(path, "FASTA file") as handle:
        for lineno, line in enumerate(handle, 1):
            if line.startswith(b">"):
                if header is not None:
                    yield header, b"".join(parts)
                words = line[1:].split()
                if not words:
                    raise DataError(f"{path}: line {lineno}: FASTA header without an id")
                header = words[0].decode("utf-8", errors="replace")
                parts = []
            elif header is None:
                if line.strip():
                    raise DataError(f"{path}: line {lineno}: not FASTA (text before the first '>')")
            else:
                parts.append(line.strip())
    if header is not None:
        yield header, b"".join(parts)


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
