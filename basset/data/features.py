"""`basset-features`: peaks (one BED per sample) + genome -> Basset's features, activity table,
sequences and HDF5 (preprocess_features.py, bedtools getfasta -s and seq_hdf5.py in one step).

Basset's semantics (docs/basset-semantics.md §4): each peak becomes a point (its midpoint, or the
narrowPeak summit) extended to `size` bp and shifted inside the chromosome ends; peaks are sorted
per chromosome and strand and cut into groups wherever the next one overlaps the group's end by
less than `overlap`; inside a group the adjacent pair overlapping most (the first on a tie) is
merged, again and again, while that overlap is >= `overlap`. A merged feature is centred on the
average of the two midpoints weighted by 1 + the number of samples each is active in (rounded
half up), and is active in the union.

The compiled merge is basset/data/merge.py; the writers of the BED, activity table and FASTA are
basset/data/feature_files.py. Here: the sample table, reading the peaks, placing them on the
genome and the pipeline (`build_features`); the command line is basset/cli/features.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import Progress

from basset.data.feature_files import feature_ids, write_activity, write_bed, write_fasta
from basset.data.genome import Genome
from basset.data.h5write import SplitArrays, write_basset_h5
from basset.data.merge import Features, Intervals, merge_intervals
from basset.data.onehot import CODE_TABLE
from basset.data.peaks import PeakArrays
from basset.data.splits import split_indices
from basset.errors import BassetError, DataError
from basset.fileio import atomic_path, check_distinct, open_input
from basset.progress import progress_bars

log = logging.getLogger(__name__)

PRIMARY = re.compile(r"chr\d+$")  # with chrX: what Basset's -i keeps


@dataclass
class Sample:
    label: str
    bed: Path


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
                raise DataError(
                    f"{path}: line {number}: expected 'label bed_path', got {len(words)} fields"
                )
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
    peaks = PeakArrays()
    counts: list[int] = []
    ignored: dict[str, int] = {}
    task = progress.add_task("reading peaks", total=len(samples)) if progress else None
    sizes = [source.bed.stat().st_size for source in samples]
    for index, source in enumerate(samples):
        start = peaks.size
        names = peaks.read(source.bed, summit=summit)
        if index == 0:  # room for all, at the first file's peaks a byte, twice over: no regrowing
            peaks.reserve(2 * peaks.size * sum(sizes[1:]) // max(sizes[0], 1))
        codes = np.array([chroms.setdefault(name, len(chroms)) for name in names], np.int32)
        keep_name = np.array(
            [not _ignored(name, ignore_y, primary_only) for name in names], dtype=bool
        )
        if not keep_name.all():
            chrom = peaks.chrom[start : peaks.size]
            for name, count in zip(names, np.bincount(chrom, minlength=len(names)), strict=True):
                if _ignored(name, ignore_y, primary_only):
                    ignored[name] = ignored.get(name, 0) + int(count)
            peaks.keep(start, keep_name[chrom])
        added = peaks.chrom[start : peaks.size]
        np.take(codes, added, out=added)
        counts.append(peaks.size - start)
        if progress is not None and task is not None:
            progress.update(task, advance=1)
    if ignored:
        shown = ", ".join(f"{name} {count}" for name, count in sorted(ignored.items())[:5])
        log.info(
            "ignored %d peaks (%s%s)",
            sum(ignored.values()),
            shown,
            ", ..." if len(ignored) > 5 else "",
        )
    sample = np.repeat(np.arange(len(samples), dtype=np.int32), counts)
    n = peaks.size
    return Intervals(list(chroms), peaks.chrom[:n], peaks.minus[:n], peaks.point[:n], sample)


def _ignored(name: str, ignore_y: bool, primary_only: bool) -> bool:
    return (ignore_y and name == "chrY") or (
        primary_only and not PRIMARY.match(name) and name != "chrX"
    )


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
                f"{sizes_file}: {name} is {sizes[name]} bp but {genome.lengths[name]} bp in "
                f"{genome.path}"
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
            f"{samples[int(intervals.sample[row])].bed}: a peak at {name}:{intervals.point[row]} "
            "is "
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


def _merge_and_extract(
    intervals: Intervals, samples: list[Sample], genome_path: Path, sizes_file: Path | None,
    size: int, overlap: int, progress: Progress,
) -> tuple[Features, np.ndarray]:
    """The merged features on the genome and their sequences (one byte per base)."""
    genome = Genome(genome_path)
    try:
        intervals, lengths = on_genome(intervals, samples, genome, sizes_file)
        task = progress.add_task("merging", total=None)
        features = merge_intervals(intervals, lengths, len(samples), size=size, overlap=overlap)
        progress.update(task, total=1, completed=1)
        if not len(features):
            raise DataError(f"every chromosome with peaks is shorter than {size} bp")
        task = progress.add_task("extracting sequences", total=None)
        seqs = genome.windows(features.chroms, features.chrom, features.start, features.minus, size)
        progress.update(task, total=1, completed=1)
    except BassetError:
        genome.discard_built_index()  # refused: nothing of ours is left behind
        raise
    finally:
        genome.close()
    return features, seqs


def _write_text_outputs(
    paths: list[Path], features: Features, labels: list[str], ids: list[str], seqs: np.ndarray,
    progress: Progress,
) -> None:
    """The BED, the activity table and the FASTA, into `paths` in that order."""
    task = progress.add_task("writing BED, table, FASTA", total=3)
    writers = (
        lambda out: write_bed(out, features),
        lambda out: write_activity(out, features, labels),
        lambda out: write_fasta(out, ids, seqs),
    )
    for path, write in zip(paths, writers, strict=True):
        with path.open("wb") as out:
            write(out)
        progress.update(task, advance=1)


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
    outputs = [
        Path(prefix + suffix) for suffix in (".bed", "_act.txt", ".fa", *([".h5"] if h5 else []))
    ]
    check_distinct(
        [("the sample table", sample_table), ("the genome", genome_path),
         ("the chromosome sizes file", sizes_file),
         *((f"the peak file of {s.label}", s.bed) for s in samples)],
        [("the output", path) for path in outputs],
    )
    with progress_bars(quiet) as progress:
        intervals = collect_intervals(
            samples, summit=summit, ignore_y=ignore_y, primary_only=primary_only, progress=progress
        )
        n_peaks = len(intervals.point)
        if not n_peaks:
            raise DataError(f"{sample_table}: no peaks left to make features of")
        features, seqs = _merge_and_extract(
            intervals, samples, Path(genome_path), sizes_file, size, overlap, progress
        )
        del intervals
        ids = feature_ids(features)
        counts = split_indices(len(ids), valid, test, seed) if h5 else None  # checks the sizes
        with ExitStack() as stack:
            tmp = [stack.enter_context(atomic_path(path)) for path in outputs]
            _write_text_outputs(tmp[:3], features, labels, ids, seqs, progress)
            if counts is not None:
                codes = np.take(CODE_TABLE, seqs, out=seqs)  # in place: the bytes are written
                targets = features.active().astype(np.int8)
                splits = {
                    name: SplitArrays(codes[idx], targets[idx], [ids[i] for i in idx])
                    for name, idx in counts.items()
                }
                write_basset_h5(
                    tmp[3], splits, labels, onehot_dtype=onehot_dtype, progress=progress
                )
    return FeaturesSummary(
        n_peaks=n_peaks,
        n_features=len(features),
        n_targets=len(samples),
        outputs=outputs,
        counts={name: len(idx) for name, idx in counts.items()} if counts else None,
    )
