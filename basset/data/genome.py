"""A genome FASTA through pyfaidx (plain or bgzipped; the .fai, and .gzi for bgzip, built beside it
when missing, older than the genome or not matching it: basset.data.fai), and the sequences of
many same-sized windows cut from it.

Extraction reads each chromosome once through the library and slices every window of it with
one numpy gather, instead of one library call per window. Reading a chromosome is most of the
cost (the library decodes it and strips its newlines in Python), so large extractions share the
chromosomes among forked processes, one per core, that write their rows straight into one
shared output buffer.
"""

from __future__ import annotations

import logging
import mmap
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyfaidx  # type: ignore[import-untyped]

from basset.data.fai import index_problem
from basset.device import cpu_cores
from basset.errors import DataError
from basset.fileio import GZIP_MAGIC, UTF8_BOM, UTF16_BOMS, OutputError, atomic_path

log = logging.getLogger(__name__)

COMPRESSED_SUFFIXES = (".gz", ".bgz")
PARALLEL_BYTES = 64 << 20  # smaller extractions stay in this process (forking costs more)

# Reverse complement of FASTA bytes: case kept, IUPAC codes complemented, anything else kept.
COMPLEMENT = np.arange(256, dtype=np.uint8)
for _base, _other in zip("ACGTRYKMBVDH", "TGCAYRMKVBHD", strict=True):
    COMPLEMENT[ord(_base)], COMPLEMENT[ord(_base.lower())] = ord(_other), ord(_other.lower())


class Genome:
    """Chromosome names and lengths (the index) and whole chromosomes as bytes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _check_file(self.path)
        self.built: list[Path] = []  # index files made here where there were none
        self._fasta = self._open_indexed()
        self.lengths: dict[str, int] = {name: len(record) for name, record in self._fasta.items()}

    def _open_indexed(self) -> pyfaidx.Fasta:
        """The genome through its index: one that matches the file is used as it is, a missing,
        older or disagreeing one is (re)built beside it (atomically: a genome that cannot be
        indexed leaves the old index as it was, or none)."""
        fai = Path(f"{self.path}.fai")
        gzi = Path(f"{self.path}.gzi") if self.path.suffix in COMPRESSED_SUFFIXES else None
        present = [p for p in (fai, gzi) if p is not None and p.exists()]
        if _not_older(self.path, fai) and (gzi is None or _not_older(self.path, gzi)):
            problem = index_problem(self.path, fai, gzi)
            if problem is None:
                return _open_fasta(self.path)
            log.warning("%s: its index %s does not match it (%s); rebuilding the index",
                        self.path, fai, problem)
        try:
            with ExitStack() as stack:
                temps = [stack.enter_context(atomic_path(p)) for p in (fai, gzi) if p is not None]
                for temp in temps:
                    temp.unlink()  # pyfaidx builds an index only where there is none
                fasta = _open_fasta(self.path, indexname=str(temps[0]),
                                    gzi_indexname=str(temps[-1]) if gzi else None)
        except OutputError as err:
            raise DataError(
                f"{self.path}: cannot write or read the FASTA index beside it ({err}); index it "
                "where it can be written (samtools faidx) or copy the genome"
            ) from None
        self.built = [p for p in (fai, gzi) if p is not None and p not in present]
        return fasta

    def discard_built_index(self) -> None:
        """Remove the index files this genome made (when its run is refused: nothing written)."""
        for made in self.built:
            made.unlink(missing_ok=True)

    def chromosome(self, name: str) -> np.ndarray:
        """The whole chromosome as uint8 bytes (soft-masking kept)."""
        text = self._fasta[name][: self.lengths[name]]
        return np.frombuffer(text.encode("ascii", errors="replace"), dtype=np.uint8)

    def windows(
        self, names: Iterable[str], chrom: np.ndarray, start: np.ndarray, minus: np.ndarray,
        size: int, *, workers: int | None = None,
    ) -> np.ndarray:
        """(n, size) uint8 bytes of windows [start, start + size) of chromosome `names[chrom]`,
        reverse-complemented where `minus` (bedtools getfasta -s). `workers`: processes (None:
        one per core for an output over PARALLEL_BYTES, else this process alone)."""
        names = list(names)
        by_chrom = np.argsort(chrom, kind="stable")
        codes, firsts = np.unique(chrom[by_chrom], return_index=True)
        jobs = [(names[code], rows) for code, rows in
                zip(codes.tolist(), np.split(by_chrom, firsts[1:]), strict=True)]
        jobs.sort(key=lambda job: -self.lengths[job[0]])  # the longest first: even shares
        if workers is None:
            workers = cpu_cores() if len(start) * size > PARALLEL_BYTES else 1
        workers = min(workers, len(jobs))
        if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            out = np.empty((len(start), size), dtype=np.uint8)
            for name, rows in jobs:
                self._fill(out, name, rows, start, minus, size)
            return out
        # Anonymous shared memory made before the fork: the children's rows land in `out`.
        out = np.frombuffer(mmap.mmap(-1, len(start) * size), dtype=np.uint8)
        out = out.reshape(len(start), size)
        # Forked, the children inherit these arguments as they are (nothing is pickled).
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_start_child,
                                 initargs=(self.path, out, start, minus, size)) as pool:
            list(pool.map(_fill_in_child, jobs))
        return out

    def _fill(self, out: np.ndarray, name: str, rows: np.ndarray, start: np.ndarray,
              minus: np.ndarray, size: int) -> None:
        sequence = self.chromosome(name)
        windows = np.lib.stride_tricks.sliding_window_view(sequence, size)[start[rows]]
        flip = minus[rows]
        windows[flip] = COMPLEMENT[windows[flip, ::-1]]
        out[rows] = windows

    def close(self) -> None:
        self._fasta.close()


# A forked extraction child's own genome handle (a file offset shared with the parent would mix
# their reads) and the shared output with the windows' starts, strands and size.
_CHILD: tuple[Genome, np.ndarray, np.ndarray, np.ndarray, int] | None = None


def _start_child(path: Path, out: np.ndarray, start: np.ndarray, minus: np.ndarray,
                 size: int) -> None:
    global _CHILD
    _CHILD = (Genome(path), out, start, minus, size)


def _fill_in_child(job: tuple[str, np.ndarray]) -> None:
    assert _CHILD is not None
    genome, out, start, minus, size = _CHILD
    genome._fill(out, job[0], job[1], start, minus, size)


def _open_fasta(path: Path, **index: str | None) -> pyfaidx.Fasta:
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=False, rebuild=True,
                             **index)
    except pyfaidx.UnsupportedCompressionFormat:
        raise DataError(
            f"{path}: gzip, not bgzip: an indexed genome must be block-gzipped "
            "(gunzip it, then bgzip it) or plain"
        ) from None
    except pyfaidx.IndexNotFoundError as err:
        raise DataError(
            f"{path}: cannot write or read the FASTA index beside it ({err}); "
            "index it where it can be written (samtools faidx) or copy the genome"
        ) from None
    except OSError as err:
        raise DataError(
            f"{path}: cannot write the FASTA index beside it ({err.strerror or err})"
        ) from None
    except (pyfaidx.FastaIndexingError, ValueError) as err:
        raise DataError(f"{path}: cannot index the genome FASTA: {err}") from None


def _not_older(fasta: Path, index: Path) -> bool:
    """Whether pyfaidx would take `index` as it is: a file not older than the FASTA."""
    return index.is_file() and index.stat().st_mtime >= fasta.stat().st_mtime


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
