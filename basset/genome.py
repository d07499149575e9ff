"""A genome FASTA through pyfaidx (plain or bgzipped; the .fai, and .gzi for bgzip, built beside it
when missing), and the sequences of many same-sized windows cut from it.

Extraction reads each chromosome once through the library and slices every window of it with
one numpy gather, instead of one library call per window.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyfaidx  # type: ignore[import-untyped]

from basset.errors import DataError
from basset.fileio import GZIP_MAGIC, UTF8_BOM, UTF16_BOMS

COMPRESSED_SUFFIXES = (".gz", ".bgz")

# Reverse complement of FASTA bytes: case kept, IUPAC codes complemented, anything else kept.
COMPLEMENT = np.arange(256, dtype=np.uint8)
for _base, _other in zip("ACGTRYKMBVDH", "TGCAYRMKVBHD", strict=True):
    COMPLEMENT[ord(_base)], COMPLEMENT[ord(_base.lower())] = ord(_other), ord(_other.lower())


class Genome:
    """Chromosome names and lengths (the index) and whole chromosomes as bytes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _check_file(self.path)
        try:
            self._fasta = pyfaidx.Fasta(
                str(self.path), as_raw=True, sequence_always_upper=False, rebuild=True
            )
        except pyfaidx.UnsupportedCompressionFormat:
            raise DataError(
                f"{self.path}: gzip, not bgzip: an indexed genome must be block-gzipped "
                "(gunzip it, then bgzip it) or plain"
            ) from None
        except pyfaidx.IndexNotFoundError as err:
            raise DataError(
                f"{self.path}: cannot write or read the FASTA index beside it ({err}); "
                "index it where it can be written (samtools faidx) or copy the genome"
            ) from None
        except OSError as err:
            raise DataError(
                f"{self.path}: cannot write the FASTA index beside it ({err.strerror or err})"
            ) from None
        except (pyfaidx.FastaIndexingError, ValueError) as err:
            raise DataError(f"{self.path}: cannot index the genome FASTA: {err}") from None
        self.lengths: dict[str, int] = {name: len(record) for name, record in self._fasta.items()}

    def chromosome(self, name: str) -> np.ndarray:
        """The whole chromosome as uint8 bytes (soft-masking kept)."""
        text = self._fasta[name][: self.lengths[name]]
        return np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8)

    def windows(
        self, names: Iterable[str], chrom: np.ndarray, start: np.ndarray, minus: np.ndarray,
        size: int,
    ) -> np.ndarray:
        """(n, size) uint8 bytes of windows [start, start + size) of chromosome `names[chrom]`,
        reverse-complemented where `minus` (bedtools getfasta -s)."""
        names = list(names)
        out = np.empty((len(start), size), dtype=np.uint8)
        by_chrom = np.argsort(chrom, kind="stable")
        codes, firsts = np.unique(chrom[by_chrom], return_index=True)
        for code, rows in zip(codes.tolist(), np.split(by_chrom, firsts[1:]), strict=True):
            sequence = self.chromosome(names[code])
            out[rows] = np.lib.stride_tricks.sliding_window_view(sequence, size)[start[rows]]
        flip = np.flatnonzero(minus)
        out[flip] = COMPLEMENT[out[flip, ::-1]]
        return out

    def close(self) -> None:
        self._fasta.close()


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"genome FASTA not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith((UTF8_BOM, *UTF16_BOMS)):
        raise DataError(
            f"{path}: the genome starts with a byte-order mark, which an indexed FASTA cannot "
            "have; remove it (or save the file as plain ASCII)"
        )
    if head.startswith(GZIP_MAGIC) and path.suffix not in COMPRESSED_SUFFIXES:
        raise DataError(f"{path}: gzip-compressed but not named .gz; rename it to {path.name}.gz")
