"""`basset-preprocess`: FASTA + activity table -> Basset HDF5 (the equivalent of seq_hdf5.py).

Sequences are streamed from the FASTA into compact base codes, shuffled with the seed (train
first, then valid, then test, as seq_hdf5.py), and written as chunked, compressed one-hot
(N, 4, 1, L) in blocks, so the float16 one-hot of everything never sits in memory at once.
Reading and checking the inputs, matching ids and splitting live here; the HDF5 writer is in
basset.data.h5write, the split sizes and shuffle in basset.data.splits, the command line in
basset.cli.preprocess.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import Progress

from basset.data.fasta import read_fasta
from basset.data.h5write import ONEHOT_DTYPES, SplitArrays, write_basset_h5
from basset.data.onehot import describe_lengths, encode_codes
from basset.data.splits import split_indices
from basset.errors import DataError
from basset.fileio import check_distinct, check_output_file, open_input
from basset.progress import progress_bars

log = logging.getLogger(__name__)

FASTA_BATCH = 50_000
EXAMPLES = 3


@dataclass
class ActivityTable:
    labels: list[str]
    ids: list[str]
    values: np.ndarray  # (N, T) float64


def _examples(items: Iterable[str]) -> str:
    shown: list[str] = []
    for item in items:
        if len(shown) == EXAMPLES:
            shown.append("...")
            break
        shown.append(item)
    return ", ".join(shown)


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{what} not found: {path}")


def read_table(path: str | Path) -> ActivityTable:
    """Read Basset's activity table: a header line of target labels (optionally after an empty
    cell or an id-column name), then `id v1 v2 ...` rows split on whitespace."""
    path = Path(path)
    with open_input(path, "activity table") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace")
        lines = [(no, line) for no, line in enumerate(text, 1) if line.strip()]
    if not lines:
        raise DataError(f"{path}: the activity table is empty")
    header_no, header = lines[0]
    rows = lines[1:]
    if not rows:
        raise DataError(f"{path}: the activity table has a header but no rows")
    width = len(rows[0][1].split())
    if width < 2:
        raise DataError(f"{path}: line {rows[0][0]}: a row needs an id and at least one value")
    labels = [
        c.strip() for c in (header.rstrip("\r\n").split("\t") if "\t" in header else header.split())
    ]
    if labels[0] == "":  # Basset's header: an empty cell above the ids, then the labels
        labels = labels[1:]
    elif len(labels) == width and _all_numeric(labels[1:]):
        log.warning("%s: no header line; naming targets t0..t%d", path, width - 2)
        rows, labels = lines, [f"t{i}" for i in range(width - 1)]
    elif len(labels) == width:
        labels = labels[1:]  # the first cell names the id column
    if len(labels) != width - 1:
        raise DataError(
            f"{path}: line {header_no}: the header names {len(labels)} targets "
            f"but rows have {width - 1} values"
        )
    dups = _duplicates(labels)
    if dups:
        raise DataError(f"{path}: line {header_no}: repeated target labels ({_examples(dups)})")
    ids: list[str] = []
    tokens: list[str] = []
    for no, line in rows:
        parts = line.split()
        if len(parts) != width:
            raise DataError(
                f"{path}: line {no}: {len(parts)} columns, "
                f"expected {width} (an id and {width - 1} values)"
            )
        ids.append(parts[0])
        tokens.extend(parts[1:])
    try:
        values = np.array(tokens).astype(np.float64).reshape(len(rows), width - 1)
    except ValueError:
        raise DataError(_first_bad_value(path, rows)) from None
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"{path}: line {rows[bad][0]}: value is not a finite number (NaN or inf)")
    return ActivityTable(labels=labels, ids=ids, values=values)


def _all_numeric(tokens: Sequence[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def _first_bad_value(path: Path, rows: Sequence[tuple[int, str]]) -> str:
    for no, line in rows:
        for token in line.split()[1:]:
            try:
                float(token)
            except ValueError:
                return f"{path}: line {no}: value {token!r} is not a number"
    return f"{path}: values that are not numbers"


def _duplicates(ids: Sequence[str]) -> list[str]:
    seen: set[str] = set()
    dups: dict[str, None] = {}
    for name in ids:
        if name in seen:
            dups[name] = None
        seen.add(name)
    return list(dups)


def read_sequences(
    path: str | Path, n_expected: int, extend: int | None, progress: Progress | None = None
) -> tuple[list[str], np.ndarray]:
    """Stream the FASTA into (ids, codes (N, L)); without `extend` every length must agree."""
    path = Path(path)
    _require_file(path, "FASTA file")
    ids: list[str] = []
    lengths: list[int] = []
    codes: np.ndarray | None = None
    mixed = False
    task = progress.add_task("reading FASTA", total=n_expected) if progress else None
    for batch_ids, batch in _batches(read_fasta(path), FASTA_BATCH):
        start = len(ids)
        ids.extend(batch_ids)
        lengths.extend(len(s) for s in batch)
        length = extend or lengths[0]
        mixed = mixed or (extend is None and any(len(s) != length for s in batch))
        if codes is None:
            codes = np.empty((n_expected, length), dtype=np.uint8)
        if not mixed and start < n_expected:
            stop = min(len(ids), n_expected)
            codes[start:stop] = encode_codes(batch[: stop - start], length)
        if progress is not None and task is not None:
            progress.update(task, completed=len(ids))
    if not ids or codes is None:
        raise DataError(f"{path}: no sequences in the FASTA file")
    if mixed:
        raise DataError(
            f"{path}: sequences of different lengths ({describe_lengths(np.array(lengths))}); "
            "use -e/--extend LENGTH to centre-trim/pad them to one length"
        )
    if codes.shape[1] == 0:
        raise DataError(f"{path}: the sequences are empty (headers without bases)")
    return ids, codes[: len(ids)]


def _batches(
    records: Iterator[tuple[str, bytes]], size: int
) -> Iterator[tuple[list[str], list[bytes]]]:
    ids: list[str] = []
    seqs: list[bytes] = []
    for name, seq in records:
        ids.append(name)
        seqs.append(seq)
        if len(ids) == size:
            yield ids, seqs
            ids, seqs = [], []
    if ids:
        yield ids, seqs


def match_ids(
    fasta: Path, table: Path, fasta_ids: Sequence[str], table_ids: Sequence[str]
) -> np.ndarray:
    """Row of the table for each FASTA record; every id must be on both sides exactly once."""
    for where, ids in ((fasta, fasta_ids), (table, table_ids)):
        dups = _duplicates(ids)
        if dups:
            raise DataError(f"{where}: {len(dups)} duplicate ids ({_examples(dups)})")
    row_of = {name: i for i, name in enumerate(table_ids)}
    not_in_table = [name for name in fasta_ids if name not in row_of]
    if not_in_table:
        raise DataError(
            f"{len(not_in_table)} FASTA ids are not in the activity table "
            f"({_examples(not_in_table)})"
        )
    if len(fasta_ids) != len(table_ids):
        in_fasta = set(fasta_ids)
        missing = [name for name in table_ids if name not in in_fasta]
        raise DataError(
            f"{len(missing)} activity-table ids are not in the FASTA ({_examples(missing)})"
        )
    return np.fromiter((row_of[name] for name in fasta_ids), dtype=np.int64, count=len(fasta_ids))


def targets_dtype(values: np.ndarray) -> np.dtype:
    """int8 when every value is an integer in int8's range (as seq_hdf5.py), else float32."""
    integral = np.array_equal(values, np.round(values)) and (
        values.size == 0 or (values.min() >= -128 and values.max() <= 127)
    )
    return np.dtype(np.int8 if integral else np.float32)


@dataclass
class PreprocessSummary:
    path: Path
    counts: dict[str, int]
    seq_len: int
    target_labels: list[str]
    targets_dtype: str
    onehot_dtype: str

    def __str__(self) -> str:
        counts = ", ".join(f"{name} {n}" for name, n in self.counts.items())
        return (
            f"wrote {self.path}: {counts} sequences of {self.seq_len} bp; "
            f"{len(self.target_labels)} targets ({self.targets_dtype}); {self.onehot_dtype} one-hot"
        )


def preprocess(
    fasta: str | Path,
    table: str | Path,
    out: str | Path,
    *,
    valid: float = 0.1,
    test: float = 0.1,
    seed: int = 1,
    extend: int | None = None,
    onehot_dtype: str = "float16",
    quiet: bool = True,
) -> PreprocessSummary:
    """FASTA + activity table -> Basset HDF5; raises DataError (and writes nothing) on bad input."""
    fasta, table, out = Path(fasta), Path(table), Path(out)
    _require_file(fasta, "FASTA file")
    check_output_file(out)
    check_distinct([("the FASTA", fasta), ("the activity table", table)], [("the output", out)])
    if extend is not None and extend <= 0:
        raise DataError(f"-e/--extend must be a positive length, not {extend}")
    if onehot_dtype not in ONEHOT_DTYPES:
        raise DataError(f"unknown one-hot dtype {onehot_dtype!r} (use {', '.join(ONEHOT_DTYPES)})")
    activity = read_table(table)
    with progress_bars(quiet) as progress:
        ids, codes = read_sequences(fasta, len(activity.ids), extend, progress)
        rows = match_ids(fasta, table, ids, activity.ids)
        out_dtype = targets_dtype(activity.values)
        targets = activity.values[rows].astype(out_dtype)
        order = split_indices(len(ids), valid, test, seed)
        splits = {
            name: SplitArrays(codes[idx], targets[idx], [ids[i] for i in idx])
            for name, idx in order.items()
        }
        write_basset_h5(out, splits, activity.labels, onehot_dtype=onehot_dtype, progress=progress)
    return PreprocessSummary(
        path=out,
        counts={name: len(idx) for name, idx in order.items()},
        seq_len=codes.shape[1],
        target_labels=activity.labels,
        targets_dtype=str(out_dtype),
        onehot_dtype=onehot_dtype,
    )
