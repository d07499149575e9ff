"""`basset-features`: peaks (one BED per sample) + genome -> Basset's features, activity table,
sequences and HDF5 (preprocess_features.py, bedtools getfasta -s and seq_hdf5.py in one step).

Basset's semantics (reference/basset.md §3.2): each peak becomes a point (its midpoint, or the
narrowPeak summit) extended to `size` bp and shifted inside the chromosome ends; peaks are sorted
per chromosome and strand and cut into groups wherever the next one overlaps the group's end by
less than `overlap`; inside a group the adjacent pair overlapping most (the first on a tie) is
merged, again and again, while that overlap is >= `overlap`. A merged feature is centred on the
average of the two midpoints weighted by 1 + the number of samples each is active in (rounded
half up), and is active in the union.

Vectorised: one sort of every interval, identical positions collapsed, and the greedy merge run
on all groups at once in rounds. A round merges every pair that overlaps more than both its
neighbours (more than the left one, at least as much as the right one): such a pair is merged
by the one-pair-at-a-time greedy too before either neighbour changes (merging only moves
neighbours apart), and merges of disjoint pairs commute, so the rounds reach exactly the greedy's
result. Activities are bit sets, one bit per sample, in uint64 words.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

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
NO_GAP = np.iinfo(np.int64).max


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
        names = self.chroms
        return [
            f"{names[c]}:{s}-{s + self.size}({'-' if m else '+'})"
            for c, s, m in zip(self.chrom.tolist(), self.start.tolist(), self.minus.tolist(), strict=True)
        ]


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
        keep = keep_name[peaks.chrom] if len(peaks.chroms) else np.zeros(0, bool)
        for name, count in zip(peaks.chroms, np.bincount(peaks.chrom, minlength=len(peaks.chroms)), strict=True):
            if _ignored(name, ignore_y, primary_only):
                ignored[name] = ignored.get(name, 0) + int(count)
        parts.append(
            (
                codes[peaks.chrom[keep]] if len(codes) else np.zeros(0, np.int32),
                peaks.minus[keep],
                peaks.point[keep],
                np.full(int(keep.sum()), index, dtype=np.int32),
            )
        )
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
    # Temporaries are reused in place: with 16M peaks each int64 array is 130 MB.
    key = intervals.chrom.astype(np.int64) * 2 + intervals.minus
    if intervals.point.max(initial=0) < 2**32:  # one sort of a packed key
        packed = key << 32
        packed |= intervals.point
        order = np.argsort(packed)
        del packed
    else:  # a chromosome over 4.29 Gb (some plant genomes)
        order = np.lexsort((intervals.point, key))
    key, sample, start = key[order], intervals.sample[order], intervals.point[order]
    del order
    start -= size // 2
    np.maximum(start, 0, out=start)
    np.minimum(start, lengths[key >> 1] - size, out=start)  # shifted inside the end
    fits = start >= 0
    dropped = int(len(fits) - fits.sum())
    if dropped:
        key, sample, start = key[fits], sample[fits], start[fits]
        log.warning("dropped %d peaks on chromosomes shorter than %d bp", dropped, size)
    del fits

    # Peaks at one position merge first (nothing overlaps more): collapse them, union of samples.
    first = np.ones(len(key), dtype=bool)
    first[1:] = (key[1:] != key[:-1]) | (start[1:] != start[:-1])
    words = max(1, -(-n_targets // 64))
    slot = np.cumsum(first) - 1
    slot *= words
    slot += sample // 64
    bit = (sample % 64).astype(np.uint64)
    del sample
    np.left_shift(np.uint64(1), bit, out=bit)
    flat = np.zeros(int(first.sum()) * words, dtype=np.uint64)
    np.bitwise_or.at(flat, slot, bit)
    del slot, bit
    activity = flat.reshape(-1, words)
    key, start = key[first], start[first]

    group_start = np.ones(len(key), dtype=bool)
    group_start[1:] = (key[1:] != key[:-1]) | (start[1:] - start[:-1] >= size - overlap)
    group = np.cumsum(group_start) - 1
    alone = np.bincount(group)[group] == 1
    merged = _greedy_rounds(
        start[~alone] + size // 2, activity[~alone], key[~alone], group[~alone], size - overlap
    )
    mids = np.concatenate([start[alone] + size // 2, merged[0]])
    keys = np.concatenate([key[alone], merged[2]])
    acts = np.concatenate([activity[alone], merged[1]])
    final = np.lexsort((mids, keys))
    keys = keys[final]
    return Features(
        chroms=intervals.chroms,
        chrom=(keys >> 1).astype(np.int32),
        minus=(keys & 1).astype(bool),
        start=mids[final] - size // 2,
        activity=acts[final],
        size=size,
        n_targets=n_targets,
        dropped=dropped,
    )


def _greedy_rounds(
    mid: np.ndarray, activity: np.ndarray, key: np.ndarray, group: np.ndarray, max_gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge inside groups while adjacent midpoints are <= max_gap apart (overlap >= Basset's -m),
    closest pair first; returns (mid, activity, key) of the merged features."""
    done: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    live_groups = np.zeros(int(group.max(initial=-1)) + 1, dtype=bool)
    while len(mid):
        gap = np.where(group[1:] == group[:-1], mid[1:] - mid[:-1], NO_GAP)
        eligible = gap <= max_gap
        live_groups[:] = False
        live_groups[group[:-1][eligible]] = True
        live = live_groups[group]
        if not live.all():  # groups with nothing left to merge are final
            done.append((mid[~live], activity[~live], key[~live]))
            mid, activity, key, group = mid[live], activity[live], key[live], group[live]
            continue
        left = np.concatenate([[NO_GAP], gap[:-1]])
        right = np.concatenate([gap[1:], [NO_GAP]])
        i = np.flatnonzero(eligible & (gap < left) & (gap <= right))
        j = i + 1
        w_i = 1 + np.bitwise_count(activity[i]).sum(axis=1, dtype=np.int64)
        w_j = 1 + np.bitwise_count(activity[j]).sum(axis=1, dtype=np.int64)
        total = w_i + w_j
        # int(0.5 + weighted mean), in integers: floor((2 * sum + total) / (2 * total)).
        mid[i] = (2 * (w_i * mid[i] + w_j * mid[j]) + total) // (2 * total)
        activity[i] |= activity[j]
        keep = np.ones(len(mid), dtype=bool)
        keep[j] = False
        mid, activity, key, group = mid[keep], activity[keep], key[keep], group[keep]
    if not done:
        return np.zeros(0, np.int64), np.zeros((0, activity.shape[1]), np.uint64), np.zeros(0, np.int64)
    return tuple(np.concatenate([d[k] for d in done]) for k in range(3))  # type: ignore[return-value]


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


def index_lists(table: np.ndarray) -> list[bytes]:
    """Rows of a 0/1 table -> b'0,5,17' (the active columns) or b'.' (none), as Basset's BED."""
    rows, cols = np.nonzero(table)
    tokens = np.array([f"{t}," for t in range(table.shape[1])], dtype="S")
    token_bytes = tokens.view(np.uint8).reshape(len(tokens), -1)
    token_len = np.char.str_len(tokens)[cols]
    offset = np.cumsum(token_len) - token_len
    blob = np.empty(int(token_len.sum()), dtype=np.uint8)
    for k in range(token_bytes.shape[1]):
        has = token_len > k
        blob[offset[has] + k] = token_bytes[cols[has], k]
    text = blob.tobytes()
    ends = np.cumsum(np.bincount(rows, weights=token_len, minlength=len(table)).astype(np.int64))
    begins = np.concatenate([[0], ends[:-1]])
    return [text[b : e - 1] if e > b else b"." for b, e in zip(begins.tolist(), ends.tolist(), strict=True)]


def _chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, WRITE_ROWS):
        yield slice(start, min(n, start + WRITE_ROWS))


def write_bed(handle: BinaryIO, features: Features) -> None:
    """Basset's 7 columns: chrom, start, end, '.', '1', strand, active sample indexes."""
    names = [name.encode() for name in features.chroms]
    for rows in _chunks(len(features)):
        lists = index_lists(features.active(rows))
        handle.write(
            b"".join(
                b"%s\t%d\t%d\t.\t1\t%s\t%s\n" % (names[c], s, s + features.size, b"-" if m else b"+", acts)
                for c, s, m, acts in zip(
                    features.chrom[rows].tolist(), features.start[rows].tolist(),
                    features.minus[rows].tolist(), lists, strict=True,
                )
            )
        )


def write_activity(handle: BinaryIO, features: Features, labels: Sequence[str], ids: Sequence[str]) -> None:
    """Basset's activity table: a header of labels after an empty cell, then `id 0/1 ...`."""
    handle.write(("\t".join(["", *labels]) + "\n").encode())
    width = 2 * features.n_targets + 1
    for rows in _chunks(len(features)):
        table = features.active(rows)
        chars = np.empty((len(table), width), dtype=np.uint8)
        chars[:, 0:-1:2] = ord("\t")
        chars[:, 1::2] = table + ord("0")
        chars[:, -1] = ord("\n")
        text = chars.tobytes()
        handle.write(
            b"".join(
                name.encode() + text[r * width : (r + 1) * width]
                for r, name in enumerate(ids[rows])
            )
        )


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
                    lambda out: write_activity(out, features, labels, ids),
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
