"""`basset-features`: peaks (one BED per sample) + genome -> Basset's features, activity table,
sequences and HDF5 (preprocess_features.py, bedtools getfasta -s and seq_hdf5.py in one step).

Basset's semantics (reference/basset.md §3.2): each peak becomes a point (its midpoint, or the
narrowPeak summit) extended to `size` bp and shifted inside the chromosome ends; peaks are sorted
per chromosome and strand and cut into groups wherever the next one overlaps the group's end by
less than `overlap`; inside a group the adjacent pair overlapping most (the first on a tie) is
merged, again and again, while that overlap is >= `overlap`. A merged feature is centred on the
average of the two midpoints weighted by 1 + the number of samples each is active in (rounded
half up), and is active in the union.

Compiled (numba): one sort of every peak packed into one integer, then one sweep that places
the windows, collapses identical ones into bit sets of samples (one bit per sample, in uint64
words) and runs the greedy merge on each group as it closes; the rows of the BED and the
activity table are formatted by compiled loops too, a chunk of rows per write.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numba
import numpy as np
from rich.progress import Progress

from basset.cliutil import ArgParser, cli_entry, setup_logging
from basset.errors import DataError
from basset.fileio import atomic_path, open_input
from basset.genome import Genome
from basset.onehot import CODE_TABLE
from basset.peaks import read_peaks
from basset.preprocess import (
    SplitArrays,
    add_split_arguments,
    progress_bars,
    split_indices,
    write_basset_h5,
)

log = logging.getLogger(__name__)

PRIMARY = re.compile(r"chr\d+$")  # with chrX: what Basset's -i keeps
WRITE_ROWS = 65_536
CHUNK_BYTES = 1 << 24
BED_ROWS, ACTIVITY_ROWS = 1, 2  # the kinds of rows _format_rows writes (0: ids)
# "\t0\t1..." of the 8 samples of each activity byte (bit k: the k-th cell)
ACTIVITY_CELLS = np.array(
    [[9, 48 + (byte >> (k // 2) & 1)][k % 2] for byte in range(256) for k in range(16)], np.uint8
).reshape(256, 16)


@dataclass
class Sample:
    label: str
    bed: Path


@dataclass
class Intervals:
    """Every sample's peaks as points, concatenated."""

    chroms: list[str]
    chrom: np.ndarray  # int32 index into chroms
    minus: np.ndarray  # bool
    point: np.ndarray  # int64
    sample: np.ndarray  # int32 index into the sample table


@dataclass
class Features:
    chroms: list[str]
    chrom: np.ndarray  # (n,) int32
    minus: np.ndarray  # (n,) bool
    start: np.ndarray  # (n,) int64
    activity: np.ndarray  # (n, ceil(targets / 64)) uint64: bit t of row i = active in sample t
    size: int
    n_targets: int
    dropped: int = 0  # points on chromosomes shorter than `size`

    def __len__(self) -> int:
        return len(self.start)

    def active(self, rows: slice = slice(None)) -> np.ndarray:
        """(rows, targets) uint8 0/1 table of a slice of the features."""
        packed = np.ascontiguousarray(self.activity[rows]).view(np.uint8)
        return np.unpackbits(packed, axis=1, bitorder="little")[:, : self.n_targets]

    def ids(self) -> list[str]:
        """`chrom:start-end(strand)`, as bedtools getfasta -s names them."""
        return _id_text(self).decode().split("\n")[:-1]


def read_sample_table(path: str | Path) -> list[Sample]:
    """Basset's sample_beds.txt: `label bed_path` per line. A relative path that does not exist
    from the working folder is taken relative to the table's folder."""
    path = Path(path)
    samples: list[Sample] = []
    with open_input(path, "sample table") as handle:
        for number, raw in enumerate(handle, 1):
            words = raw.decode("utf-8", errors="replace").split()
            if not words:
                continue
            if len(words) != 2:
                raise DataError(f"{path}: line {number}: expected 'label bed_path', got {len(words)} fields")
            label, bed = words[0], Path(words[1])
            if not bed.is_absolute() and not bed.exists():
                bed = path.parent / bed
            samples.append(Sample(label, bed))
    if not samples:
        raise DataError(f"{path}: the sample table is empty")
    seen: set[str] = set()
    for sample in samples:
        if sample.label in seen:
            raise DataError(f"{path}: the label {sample.label!r} is used twice")
        seen.add(sample.label)
    for sample in samples:
        if not sample.bed.is_file():
            raise DataError(f"{path}: peak file of {sample.label} not found: {sample.bed}")
    return samples


def collect_intervals(
    samples: Sequence[Sample],
    *,
    summit: bool = False,
    ignore_y: bool = False,
    primary_only: bool = False,
    progress: Progress | None = None,
) -> Intervals:
    """Read every sample's peaks into compact arrays (about 17 bytes a peak), one file at a time."""
    chroms: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    ignored: dict[str, int] = {}
    task = progress.add_task("reading peaks", total=len(samples)) if progress else None
    for index, source in enumerate(samples):
        peaks = read_peaks(source.bed, summit=summit)
        codes = np.array([chroms.setdefault(name, len(chroms)) for name in peaks.chroms], np.int32)
        keep_name = np.array(
            [not _ignored(name, ignore_y, primary_only) for name in peaks.chroms], dtype=bool
        )
        chrom, minus, point = peaks.chrom, peaks.minus, peaks.point
        if not keep_name.all():
            for name, count in zip(peaks.chroms, np.bincount(chrom, minlength=len(peaks.chroms)), strict=True):
                if _ignored(name, ignore_y, primary_only):
                    ignored[name] = ignored.get(name, 0) + int(count)
            keep = keep_name[chrom]
            chrom, minus, point = chrom[keep], minus[keep], point[keep]
        parts.append((codes[chrom], minus, point, np.full(len(point), index, dtype=np.int32)))
        if progress is not None and task is not None:
            progress.update(task, advance=1)
    if ignored:
        shown = ", ".join(f"{name} {count}" for name, count in sorted(ignored.items())[:5])
        log.info("ignored %d peaks (%s%s)", sum(ignored.values()), shown, ", ..." if len(ignored) > 5 else "")
    chrom, minus, point, sample = (np.concatenate([p[i] for p in parts]) for i in range(4))
    return Intervals(list(chroms), chrom, minus, point, sample)


def _ignored(name: str, ignore_y: bool, primary_only: bool) -> bool:
    return (ignore_y and name == "chrY") or (
        primary_only and not PRIMARY.match(name) and name != "chrX"
    )


def merge_intervals(
    intervals: Intervals,
    lengths: np.ndarray,
    n_targets: int,
    *,
    size: int = 600,
    overlap: int = 200,
) -> Features:
    """Basset's merged features from `intervals`; `lengths[c]` is chromosome c's length."""
    if size <= 0 or not 0 <= overlap < size:
        raise DataError(f"need a feature size > 0 and 0 <= merge overlap < size (got {size}, {overlap})")
    key_bits = (2 * len(intervals.chroms)).bit_length()
    point_bits = int(intervals.point.max(initial=0)).bit_length()
    sample_bits = max(1, (n_targets - 1).bit_length())
    if key_bits + point_bits > 63:
        raise DataError(f"peak positions up to {intervals.point.max()} do not fit 64-bit sort keys")
    if key_bits + point_bits + sample_bits > 63:  # many samples: sorted apart from the key
        sample_bits = 0
    codes = _pack(intervals.chrom, intervals.minus, intervals.point, intervals.sample, point_bits, sample_bits)
    if sample_bits:
        codes.sort()  # (chromosome, strand, point, sample), one integer each
        samples = np.zeros(0, np.int32)
    else:
        order = np.argsort(codes)
        codes, samples = codes[order], intervals.sample[order]
        del order
    words = max(1, -(-n_targets // 64))
    keys, mids, activity, dropped = _sweep(
        codes, samples, point_bits, sample_bits, lengths, size, size - overlap, words
    )
    if dropped:
        log.warning("dropped %d peaks on chromosomes shorter than %d bp", dropped, size)
    return Features(
        chroms=intervals.chroms,
        chrom=(keys >> 1).astype(np.int32),
        minus=(keys & 1).astype(bool),
        start=mids - size // 2,
        activity=activity,
        size=size,
        n_targets=n_targets,
        dropped=dropped,
    )


@numba.njit(cache=True)
def _pack(chrom, minus, point, sample, point_bits, sample_bits):
    """((chromosome * 2 + strand) << point_bits | point) << sample_bits | sample, per peak."""
    codes = np.empty(len(point), np.int64)
    for i in range(len(point)):
        code = ((np.int64(chrom[i]) * 2 + minus[i]) << point_bits) | point[i]
        codes[i] = (code << sample_bits) | sample[i] if sample_bits else code
    return codes


@numba.njit(cache=True)
def _sweep(codes, samples, point_bits, sample_bits, lengths, size, max_gap, words):
    """One pass over the peaks' sorted codes (_pack; the samples apart when sample_bits is 0):
    each becomes a window shifted inside its chromosome, identical windows collapse, and each
    group closes with Basset's greedy merge. Returns the features' (key, mid, activity, dropped)."""
    n = len(codes)
    half = size // 2
    out_key = np.empty(n, np.int64)
    out_mid = np.empty(n, np.int64)
    out_act = np.empty((n, words), np.uint64)
    rows = 0  # rows written; the open group is out[group:rows]
    group = 0
    dropped = 0
    last_key, last_start = -1, 0
    for i in range(n):
        value = codes[i] >> sample_bits
        sample = codes[i] & ((1 << sample_bits) - 1) if sample_bits else samples[i]
        key = value >> point_bits
        start = min(max((value & ((1 << point_bits) - 1)) - half, 0), lengths[key >> 1] - size)
        if start < 0:
            dropped += 1
            continue
        if key != last_key or start - last_start >= max_gap:
            rows = _greedy(out_mid, out_act, group, rows, max_gap)
            group = rows
        if rows == group or key != last_key or start != last_start:
            out_key[rows] = key
            out_mid[rows] = start + half
            for w in range(words):  # a row merged away may have left its bits here
                out_act[rows, w] = 0
            rows += 1
        out_act[rows - 1, sample >> 6] |= np.uint64(1) << np.uint64(sample & 63)
        last_key, last_start = key, start
    rows = _greedy(out_mid, out_act, group, rows, max_gap)
    return out_key[:rows].copy(), out_mid[:rows].copy(), out_act[:rows].copy(), dropped


@numba.njit(cache=True)
def _greedy(mid, act, first, end, max_gap):
    """Basset's merge of the group mid[first:end], in place: while the closest adjacent pair (the
    first on a tie) is <= max_gap apart (overlap >= -m), it becomes one feature at the midpoints'
    average weighted by 1 + active samples (rounded half up) with the union of activities.
    Returns the group's new end."""
    while end - first > 1:
        best = first
        for i in range(first + 1, end - 1):
            if mid[i + 1] - mid[i] < mid[best + 1] - mid[best]:
                best = i
        if mid[best + 1] - mid[best] > max_gap:
            break
        w_a, w_b = 1, 1
        for w in range(act.shape[1]):
            w_a += _bit_count(act[best, w])
            w_b += _bit_count(act[best + 1, w])
            act[best, w] |= act[best + 1, w]
        total = w_a + w_b
        # int(0.5 + weighted mean), in integers: floor((2 * sum + total) / (2 * total)).
        mid[best] = (2 * (w_a * mid[best] + w_b * mid[best + 1]) + total) // (2 * total)
        for i in range(best + 1, end - 1):
            mid[i] = mid[i + 1]
            for w in range(act.shape[1]):
                act[i, w] = act[i + 1, w]
        end -= 1
    return end


@numba.njit(cache=True)
def _bit_count(word):
    count = 0
    while word:
        word &= word - np.uint64(1)
        count += 1
    return count


def on_genome(
    intervals: Intervals, samples: Sequence[Sample], genome: Genome, sizes_file: Path | None
) -> tuple[Intervals, np.ndarray]:
    """`intervals` with chromosomes renumbered in the genome's order (the order of the outputs),
    and each one's length. Every chromosome with peaks must be in the genome (and in -c's file
    when given, with the same length), every peak inside its chromosome."""
    sizes = _read_sizes(sizes_file) if sizes_file else None
    present, first_row = np.unique(intervals.chrom, return_index=True)
    rank = {name: i for i, name in enumerate(genome.lengths)}
    for code, row in zip(present.tolist(), first_row.tolist(), strict=True):
        name = intervals.chroms[code]
        where = samples[int(intervals.sample[row])].bed
        if name not in rank:
            raise DataError(f"{where}: chromosome {name!r} is not in the genome {genome.path}")
        if sizes is not None and name not in sizes:
            raise DataError(f"{where}: chromosome {name!r} is not in {sizes_file}")
        if sizes is not None and sizes[name] != genome.lengths[name]:
            raise DataError(
                f"{sizes_file}: {name} is {sizes[name]} bp but {genome.lengths[name]} bp in {genome.path}"
            )
    names = sorted((intervals.chroms[c] for c in present.tolist()), key=rank.__getitem__)
    renumber = np.zeros(len(intervals.chroms), dtype=np.int32)
    renumber[present] = [names.index(intervals.chroms[c]) for c in present.tolist()]
    chrom = renumber[intervals.chrom]
    lengths = np.array([genome.lengths[name] for name in names], dtype=np.int64)
    beyond = np.flatnonzero(intervals.point >= lengths[chrom])
    if len(beyond):
        row = int(beyond[0])
        name = names[chrom[row]]
        raise DataError(
            f"{samples[int(intervals.sample[row])].bed}: a peak at {name}:{intervals.point[row]} is "
            f"beyond the end of {name} ({lengths[chrom[row]]} bp): another genome build?"
        )
    placed = Intervals(names, chrom, intervals.minus, intervals.point, intervals.sample)
    return placed, lengths


def _read_sizes(path: Path) -> dict[str, int]:
    sizes: dict[str, int] = {}
    with open_input(path, "chromosome sizes file") as handle:
        for number, raw in enumerate(handle, 1):
            words = raw.decode("utf-8", errors="replace").split()
            if not words:
                continue
            if len(words) < 2 or not words[1].isdigit():
                raise DataError(f"{path}: line {number}: expected 'chromosome length'")
            sizes[words[0]] = int(words[1])
    return sizes


def _chunks(n: int, row_bytes: int = 1) -> Iterator[slice]:
    """Slices of about 16 MB of text (WRITE_ROWS rows at most)."""
    step = max(1, min(WRITE_ROWS, CHUNK_BYTES // row_bytes))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


def _name_bytes(features: Features) -> tuple[np.ndarray, np.ndarray]:
    """The chromosome names as one UTF-8 buffer and their offsets in it."""
    encoded = [name.encode() for name in features.chroms]
    offsets = np.cumsum([0, *map(len, encoded)]).astype(np.int64)
    return np.frombuffer(b"".join(encoded) or b" ", np.uint8), offsets


def _id_bound(name_offsets: np.ndarray) -> int:
    """Bytes of an id, with its coordinates, at most."""
    return int(np.diff(name_offsets).max(initial=0)) + 2 * 20 + 8


def _id_text(features: Features) -> bytes:
    """Every id followed by a newline."""
    names, offsets = _name_bytes(features)
    bound = _id_bound(offsets)
    parts = []
    for rows in _chunks(len(features), bound):
        out = np.empty((rows.stop - rows.start) * bound, np.uint8)
        used = _format_rows(out, names, offsets, features.chrom[rows], features.start[rows],
                            features.minus[rows], features.activity[rows].view(np.uint8),
                            features.size, 0, 0)
        parts.append(out[:used].tobytes())
    return b"".join(parts)


def write_bed(handle: BinaryIO, features: Features) -> None:
    """Basset's 7 columns: chrom, start, end, '.', '1', strand, active sample indexes ('.': none)."""
    names, offsets = _name_bytes(features)
    bound = _id_bound(offsets) + features.n_targets * (len(str(features.n_targets)) + 1)
    _write_rows(handle, features, names, offsets, bound, BED_ROWS)


def write_activity(handle: BinaryIO, features: Features, labels: Sequence[str]) -> None:
    """Basset's activity table: a header of labels after an empty cell, then `id 0/1 ...`."""
    handle.write(("\t".join(["", *labels]) + "\n").encode())
    names, offsets = _name_bytes(features)
    bound = _id_bound(offsets) + 2 * features.n_targets
    _write_rows(handle, features, names, offsets, bound, ACTIVITY_ROWS)


def _write_rows(
    handle: BinaryIO, features: Features, names: np.ndarray, offsets: np.ndarray, bound: int, kind: int
) -> None:
    for rows in _chunks(len(features), bound):
        out = np.empty((rows.stop - rows.start) * bound, np.uint8)
        used = _format_rows(out, names, offsets, features.chrom[rows], features.start[rows],
                            features.minus[rows], features.activity[rows].view(np.uint8),
                            features.size, features.n_targets, kind)
        handle.write(out[:used].data)


@numba.njit(cache=True)
def _format_rows(out, names, offsets, chrom, start, minus, bits, size, n_targets, kind):
    """Rows into `out`, returning the bytes used: ids `chrom:start-end(strand)` (kind 0, as
    bedtools getfasta -s names them), BED rows (BED_ROWS) or activity-table rows (ACTIVITY_ROWS).
    bits: the activity words as bytes (bit k of byte j: sample 8j + k)."""
    at = 0
    for r in range(len(chrom)):
        name_lo, name_hi = offsets[chrom[r]], offsets[chrom[r] + 1]
        out[at : at + name_hi - name_lo] = names[name_lo:name_hi]
        at += name_hi - name_lo
        strand = 45 if minus[r] else 43  # '-', '+'
        if kind == BED_ROWS:
            out[at] = 9
            at = _decimal(out, at + 1, start[r])
            out[at] = 9
            at = _decimal(out, at + 1, start[r] + size)
            out[at], out[at + 1], out[at + 2], out[at + 3] = 9, 46, 9, 49  # '\t.\t1'
            out[at + 4], out[at + 5], out[at + 6] = 9, strand, 9
            at += 7
            first = at
            for j in range((n_targets + 7) >> 3):  # bits past n_targets are 0
                if bits[r, j]:
                    for k in range(8):
                        if bits[r, j] >> k & 1:
                            at = _decimal(out, at, 8 * j + k)
                            out[at] = 44  # ','
                            at += 1
            if at == first:
                out[at] = 46  # '.'
                at += 1
            else:
                at -= 1  # the last comma
        else:
            out[at] = 58  # ':'
            at = _decimal(out, at + 1, start[r])
            out[at] = 45  # '-'
            at = _decimal(out, at + 1, start[r] + size)
            out[at], out[at + 1], out[at + 2] = 40, strand, 41  # '(', strand, ')'
            at += 3
            for j in range(n_targets >> 3):  # kind ACTIVITY_ROWS: 8 cells a byte
                out[at : at + 16] = ACTIVITY_CELLS[bits[r, j]]
                at += 16
            for t in range(n_targets & ~7, n_targets):
                out[at] = 9
                out[at + 1] = 49 if bits[r, t >> 3] >> (t & 7) & 1 else 48
                at += 2
        out[at] = 10
        at += 1
    return at


@numba.njit(cache=True)
def _decimal(out, at, value):
    """The decimal digits of value >= 0 at out[at:], returning the position after them."""
    digits = 1
    while value >= 10**digits:
        digits += 1
    for j in range(digits - 1, -1, -1):
        out[at + j] = 48 + value % 10
        value //= 10
    return at + digits


def write_fasta(handle: BinaryIO, ids: Sequence[str], seqs: np.ndarray) -> None:
    length = seqs.shape[1]
    for rows in _chunks(len(ids)):
        text = seqs[rows].tobytes()
        handle.write(
            b"".join(
                b">%s\n%s\n" % (name.encode(), text[r * length : (r + 1) * length])
                for r, name in enumerate(ids[rows])
            )
        )


@dataclass
class FeaturesSummary:
    n_peaks: int
    n_features: int
    n_targets: int
    outputs: list[Path]
    counts: dict[str, int] | None

    def __str__(self) -> str:
        splits = (
            " (" + ", ".join(f"{name} {n}" for name, n in self.counts.items()) + ")"
            if self.counts
            else ""
        )
        return (
            f"{self.n_peaks} peaks of {self.n_targets} samples -> {self.n_features} features; "
            f"wrote {', '.join(str(p) for p in self.outputs)}{splits}"
        )


def build_features(
    sample_table: str | Path,
    genome_path: str | Path,
    prefix: str | Path,
    *,
    size: int = 600,
    overlap: int = 200,
    sizes_file: Path | None = None,
    ignore_y: bool = False,
    primary_only: bool = False,
    summit: bool = False,
    h5: bool = True,
    valid: float = 0.1,
    test: float = 0.1,
    seed: int = 1,
    onehot_dtype: str = "float16",
    quiet: bool = True,
) -> FeaturesSummary:
    """The whole pipeline; raises DataError before writing anything on bad input."""
    samples = read_sample_table(sample_table)
    labels = [s.label for s in samples]
    prefix = str(prefix)
    outputs = [Path(prefix + suffix) for suffix in (".bed", "_act.txt", ".fa", *([".h5"] if h5 else []))]
    with progress_bars(quiet) as progress:
        intervals = collect_intervals(
            samples, summit=summit, ignore_y=ignore_y, primary_only=primary_only, progress=progress
        )
        n_peaks = len(intervals.point)
        if not n_peaks:
            raise DataError(f"{sample_table}: no peaks left to make features of")
        genome = Genome(genome_path)
        try:
            intervals, lengths = on_genome(intervals, samples, genome, sizes_file)
            task = progress.add_task("merging", total=None)
            features = merge_intervals(intervals, lengths, len(samples), size=size, overlap=overlap)
            progress.update(task, total=1, completed=1)
            del intervals
            if not len(features):
                raise DataError(f"every chromosome with peaks is shorter than {size} bp")
            task = progress.add_task("extracting sequences", total=None)
            seqs = genome.windows(features.chroms, features.chrom, features.start, features.minus, size)
            progress.update(task, total=1, completed=1)
        finally:
            genome.close()
        ids = features.ids()
        counts = split_indices(len(ids), valid, test, seed) if h5 else None  # checks the sizes
        with ExitStack() as stack:
            tmp = [stack.enter_context(atomic_path(path)) for path in outputs]
            task = progress.add_task("writing BED, table, FASTA", total=3)
            for path, write in zip(
                tmp[:3],
                (
                    lambda out: write_bed(out, features),
                    lambda out: write_activity(out, features, labels),
                    lambda out: write_fasta(out, ids, seqs),
                ),
                strict=True,
            ):
                with path.open("wb") as out:
                    write(out)
                progress.update(task, advance=1)
            if h5 and counts is not None:
                codes = np.take(CODE_TABLE, seqs, out=seqs)  # in place: the bytes are written
                targets = features.active().astype(np.int8)
                splits = {
                    name: SplitArrays(codes[idx], targets[idx], [ids[i] for i in idx])
                    for name, idx in counts.items()
                }
                write_basset_h5(tmp[3], splits, labels, onehot_dtype=onehot_dtype, progress=progress)
    return FeaturesSummary(
        n_peaks=n_peaks,
        n_features=len(features),
        n_targets=len(samples),
        outputs=outputs,
        counts={name: len(idx) for name, idx in counts.items()} if counts else None,
    )


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-features",
        description="Peaks (one BED/narrowPeak per sample, plain or gzipped) + genome FASTA -> "
        "Basset's merged features (PREFIX.bed), activity table (PREFIX_act.txt), sequences "
        "(PREFIX.fa) and HDF5 (PREFIX.h5).",
    )
    parser.add_argument("samples", type=Path, help="sample table: 'label bed_path' per line")
    parser.add_argument("genome", type=Path, help="genome FASTA, plain or bgzipped (indexed if needed)")
    parser.add_argument("-o", "--out", default="features", metavar="PREFIX",
                        help="output prefix (default: features)")
    parser.add_argument("-s", "--size", type=int, default=600, help="feature size in bp (default 600)")
    parser.add_argument("-m", "--merge-overlap", type=int, default=200,
                        help="merge features overlapping by at least this many bp (default 200)")
    parser.add_argument("-c", "--chrom-sizes", type=Path, default=None,
                        help="chromosome lengths table, checked against the genome's")
    parser.add_argument("-y", "--no-chry", action="store_true", help="ignore chrY peaks")
    parser.add_argument("-i", "--primary-only", action="store_true",
                        help="ignore every chromosome but chr<number> and chrX (_random, chrUn, chrM, ...)")
    parser.add_argument("--summit", action="store_true",
                        help="centre on narrowPeak's summit (column 10) rather than the midpoint")
    parser.add_argument("--no-h5", action="store_true", help="stop after PREFIX.fa")
    add_split_arguments(parser, "--seed")  # -s is the feature size, as in Basset
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    return parser


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(quiet=args.quiet)
    summary = build_features(
        args.samples,
        args.genome,
        args.out,
        size=args.size,
        overlap=args.merge_overlap,
        sizes_file=args.chrom_sizes,
        ignore_y=args.no_chry,
        primary_only=args.primary_only,
        summit=args.summit,
        h5=not args.no_h5,
        valid=args.valid,
        test=args.test,
        seed=args.seed,
        onehot_dtype=args.dtype,
        quiet=args.quiet,
    )
    if not args.quiet:
        print(summary)
    return 0
