from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from Bio import bgzf

from basset.data.fasta import read_fasta, read_fasta_all
from basset.errors import DataError

RECORDS = ">s1 some description\nACGT\nacgt\n\n>s2\nNNA\n"
EXPECTED = [("s1", b"ACGTacgt"), ("s2", b"NNA")]


def write_gzip(path: Path, data: bytes) -> Path:
    with gzip.open(path, "wb") as handle:
        handle.write(data)
    return path


def write_bgzip(path: Path, data: bytes) -> Path:
    with bgzf.BgzfWriter(path, "wb") as handle:
        handle.write(data)
    return path


def test_read_fasta_streams_multiline_records(tmp_path: Path) -> None:
    fasta = tmp_path / "x.fa"
    fasta.write_text(RECORDS)
    assert list(read_fasta(fasta)) == EXPECTED


@pytest.mark.parametrize("writer", [write_gzip, write_bgzip])
def test_gzip_and_bgzip_are_read_whatever_the_name(tmp_path: Path, writer) -> None:  # type: ignore[no-untyped-def]
    assert list(read_fasta(writer(tmp_path / "x.fa.gz", RECORDS.encode()))) == EXPECTED
    # Told by the magic bytes, not the suffix.
    assert list(read_fasta(writer(tmp_path / "x.fa", RECORDS.encode()))) == EXPECTED


def test_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    fasta = tmp_path / "bom.fa"
    fasta.write_bytes(b"\xef\xbb\xbf" + RECORDS.encode())
    assert list(read_fasta(fasta)) == EXPECTED
    zipped = write_gzip(tmp_path / "bom.fa.gz", b"\xef\xbb\xbf" + RECORDS.encode())
    assert list(read_fasta(zipped)) == EXPECTED


def test_read_fasta_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="FASTA file not found"):
        list(read_fasta(tmp_path / "missing.fa"))
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n>s1\nACGT\n")
    with pytest.raises(DataError, match="line 1: not FASTA"):
        list(read_fasta(bad))
    utf16 = tmp_path / "utf16.fa"
    utf16.write_text(RECORDS, encoding="utf-16")
    with pytest.raises(
        DataError, match=r"utf16.fa: FASTA file is UTF-16 text .*save it as ASCII or UTF-8"
    ):
        list(read_fasta(utf16))
    truncated = tmp_path / "cut.fa.gz"
    truncated.write_bytes(
        write_gzip(tmp_path / "whole.gz", RECORDS.encode() * 50).read_bytes()[:40]
    )
    with pytest.raises(DataError, match="cut.fa.gz: cannot read the gzip data"):
        list(read_fasta(truncated))
    empty = tmp_path / "empty.fa"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.fa: no FASTA records"):
        read_fasta_all(empty)
