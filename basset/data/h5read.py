"""Basset HDF5 data read into memory: sequences as compact base codes, binary targets as uint8.

Sequences are held as uint8 codes (0..3 = A,C,G,T; 4 = N), a quarter of float16 one-hot; the
trainer expands them to one-hot on the device, batch by batch (basset.training.resident).
Targets that are all 0 or 1 are held as uint8 (a quarter of float32; the trainer converts each
batch to float on the device, the same numbers), others as float32. The file is read once, in
blocks, into arrays a `Store` hands out: plain memory (load_data), or files every worker of a
host maps read-only (basset.data.shared).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import h5py
import numpy as np

from basset.data.onehot import codes_from_onehot
from basset.device import available_memory, human_bytes
from basset.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
READ_BLOCK_BYTES = 32 << 20
SCRAMBLE_SAMPLE_ROWS = 256
PROGRESS_ROWS = 200_000  # splits at least this long log their loading progress
PROGRESS_EVERY_S = 5.0
CHECK_ROWS = 16_384  # check_targets: rows compared at a time
SCRAMBLED = (
    "scrambled one-hot (position-major data reshaped as channel-major?); if this file comes from "
    "Basset's 2020 seq_hdf5.py, repair it with: basset-preprocess --repair-scrambled IN OUT"
)


@dataclass
class Split:
    seqs: np.ndarray  # (N, L) uint8 codes
    targets: np.ndarray  # (N, T) uint8 when every value is 0 or 1, else float32
    headers: list[str] | None = None

    def __len__(self) -> int:
        return len(self.seqs)


@dataclass
class BassetData:
    train: Split
    valid: Split
    test: Split | None
    target_labels: list[str]

    @property
    def seq_len(self) -> int:
        return int(self.train.seqs.shape[1])

    @property
    def num_targets(self) -> int:
        return len(self.target_labels)


class Store(Protocol):
    """Where loaded arrays live: `new` hands out a writable (shape, dtype) array named `name`;
    `drop` forgets one that will not be used (binary targets that turned out not to be)."""

    def new(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray: ...

    def drop(self, name: str, array: np.ndarray) -> None: ...


class MemoryStore:
    """Arrays in this process's memory."""

    def new(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        return np.empty(shape, dtype=dtype)

    def drop(self, name: str, array: np.ndarray) -> None:
        pass


def load_data(path: str | Path, *, splits: Sequence[str] = SPLITS) -> BassetData:
    """Open and validate a Basset HDF5 (float16/float32/uint8/bool one-hot (N,4,1,L) or (N,4,L);
    int8/bool/float targets). The test split is optional (None when absent) unless it is the only
    split asked for; splits not asked for come back empty. Raises DataError naming the problem."""
    path = Path(path)
    unknown = [name for name in splits if name not in SPLITS]
    if unknown or not splits:
        raise ValueError(f"splits must be among {SPLITS}, got {tuple(splits)}")
    return _open_and_load(path, splits, decode=True)


def read_into(path: str | Path, store: Store) -> BassetData:
    """Every split of the file, checked as load_data does, into arrays from `store`."""
    return _open_and_load(Path(path), SPLITS, decode=True, store=store)


def check_data(path: str | Path, target_type: str = "binary") -> None:
    """Everything load_data checks on every split (and check_targets), without decoding the
    one-hot of every sequence (a sample is checked): cheap, before workers start."""
    data = _open_and_load(Path(path), SPLITS, decode=False)
    check_targets(data, target_type)


def _open_and_load(path: Path, splits: Sequence[str], decode: bool,
                   store: Store | None = None) -> BassetData:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if not h5py.is_hdf5(path):
        raise DataError(f"{path}: not an HDF5 file")
    try:
        with h5py.File(path, "r") as h5:
            return _load(h5, path, splits, decode, store or MemoryStore())
    except OSError as err:  # a truncated or corrupt file fails inside HDF5
        raise DataError(f"{path}: cannot read HDF5 data ({err})") from None


def _load(h5: h5py.File, path: Path, splits: Sequence[str], decode: bool,
          store: Store) -> BassetData:
    wanted = [
        name
        for name in splits
        if name != "test" or len(splits) == 1 or "test_in" in h5 or "test_out" in h5
    ]
    missing = [
        f"{name}_{part}" for name in wanted for part in ("in", "out") if f"{name}_{part}" not in h5
    ]
    if missing:
        raise DataError(f"{path}: missing datasets: {', '.join(missing)}")
    check_memory(path, load_bytes(h5, wanted, decode))
    loaded = {name: _read_split(h5, path, name, store, decode) for name in wanted}
    seq_lens = {name: split.seqs.shape[1] for name, split in loaded.items()}
    widths = {name: split.targets.shape[1] for name, split in loaded.items()}
    for what, sizes in (("sequence length", seq_lens), ("target width", widths)):
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{name} {size}" for name, size in sizes.items())
            raise DataError(f"{path}: {what} differs across splits ({shown})")
    if "train" in loaded and len(loaded["train"].targets) == 0:
        raise DataError(f"{path}: the train split is empty")
    seq_len, width = next(iter(seq_lens.values())), next(iter(widths.values()))
    labels = _target_labels(h5, path, width)
    empty = Split(np.zeros((0, seq_len), np.uint8), np.zeros((0, width), np.uint8))
    return BassetData(
        train=loaded.get("train", empty),
        valid=loaded.get("valid", empty),
        test=loaded.get("test", empty if "test" not in splits else None),
        target_labels=labels,
    )


def load_bytes(h5: h5py.File, splits: Sequence[str], decode: bool = True) -> int:
    """Host memory that loading `splits` takes, from the shapes the datasets declare (nothing is
    read): the sequences as codes (a byte a base; none when not decoded) and the one-hot sample
    checked for scrambling, the targets as read and as float32 (an upper bound: they are read in
    blocks, and held as uint8 when 0/1), headers and labels as strings."""
    needed = 0
    names = [f"{name}_{part}" for name in splits for part in ("in", "out", "headers")]
    for key in [*names, "target_labels"]:
        found = h5.get(key)
        if not isinstance(found, h5py.Dataset) or not found.shape:
            continue  # the checks that follow name what is wrong
        rows, row = found.shape[0], int(np.prod(found.shape[1:], dtype=np.float64))
        if key.endswith("_in"):
            sample = min(rows, SCRAMBLE_SAMPLE_ROWS) * row * (found.dtype.itemsize + 4)
            needed += rows * found.shape[-1] * decode + sample
        elif key.endswith("_out"):
            needed += rows * row * (found.dtype.itemsize + 4)
        else:
            needed += rows * (2 * found.dtype.itemsize + 64)
    return needed


def check_memory(path: Path, needed: int) -> None:
    """Refuse, before anything is allocated, a load larger than the memory available now."""
    available = available_memory()
    if needed > available:
        raise DataError(
            f"{path}: loading it needs about {human_bytes(needed)} of memory (the rows its "
            f"datasets declare), more than the {human_bytes(available)} available"
        )


def check_targets(data: BassetData, target_type: str) -> None:
    """Binary targets (BCE) must lie in [0, 1]: a 2 or a -1 would train, silently wrong.
    Checked CHECK_ROWS rows at a time: the work arrays stay small however large the split (a
    whole-split comparison of the DHS index's 3.4M x 733 targets took 7.5 GB per worker)."""
    if target_type != "binary":
        return
    for name in SPLITS:
        split = getattr(data, name)
        if split is None or not split.targets.size:
            continue
        for start in range(0, len(split.targets), CHECK_ROWS):
            block = split.targets[start:start + CHECK_ROWS]
            outside = (block < 0) | (block > 1)
            if outside.any():
                row, col = (int(i[0]) for i in np.nonzero(outside))
                raise DataError(
                    f"{name}_out: binary targets must be in [0, 1], found {block[row, col]:g}"
                    f" (row {start + row}, target {data.target_labels[col]}); for other values "
                    "use target_type continuous"
                )


def _dataset(h5: h5py.File, path: Path, name: str) -> h5py.Dataset:
    found = h5[name]
    if not isinstance(found, h5py.Dataset):
        raise DataError(f"{path}: {name} is an HDF5 {type(found).__name__.lower()}, not a dataset")
    return found


def _read_split(h5: h5py.File, path: Path, name: str, store: Store, decode: bool = True) -> Split:
    """The split, checked; decode=False (check_data) checks a sample of the one-hot and leaves
    `seqs` with no rows."""
    onehot, targets = _dataset(h5, path, f"{name}_in"), _dataset(h5, path, f"{name}_out")
    _check_shapes(onehot, targets, path, name)
    n, length = onehot.shape[0], onehot.shape[-1]
    values = _read_targets(targets, path, name, store)
    _check_onehot(onehot[:SCRAMBLE_SAMPLE_ROWS].reshape(-1, 4, length), f"{path}: {name}_in")
    codes = store.new(f"{name}_seqs", (n if decode else 0, length), np.uint8)
    block, shown = _block_rows(onehot), _Shown(f"{path.name}: {name}", len(codes))
    for start in range(0, len(codes), block):
        chunk = onehot[start : start + block].reshape(-1, 4, length)
        codes[start : start + len(chunk)] = codes_from_onehot(chunk)
        shown.now(start + len(chunk))
    return Split(seqs=codes, targets=values, headers=_headers(h5, path, name, n))


def _check_shapes(onehot: h5py.Dataset, targets: h5py.Dataset, path: Path, name: str) -> None:
    where = f"{path}: {name}_in"
    if onehot.dtype.kind not in "fiub":
        raise DataError(
            f"{where}: one-hot of dtype {onehot.dtype} (expected float, integer or bool)"
        )
    if onehot.ndim == 4 and onehot.shape[2] != 1:
        raise DataError(f"{where}: shape {onehot.shape}, expected (N, 4, 1, L)")
    if onehot.ndim not in (3, 4):
        raise DataError(
            f"{where}: {onehot.ndim} dimensions {onehot.shape}, expected (N, 4, 1, L) or (N, 4, L)"
        )
    if onehot.shape[1] != 4:
        hint = (
            " (position-major (N, L, 4)? Basset wants channel-major)"
            if onehot.shape[-1] == 4
            else ""
        )
        raise DataError(
            f"{where}: {onehot.shape[1]} channels in shape {onehot.shape}, "
            f"expected 4 (A,C,G,T){hint}"
        )
    if targets.ndim != 2:
        raise DataError(f"{path}: {name}_out: shape {targets.shape}, expected (N, targets)")
    n, length = onehot.shape[0], onehot.shape[-1]
    if targets.shape[0] != n:
        raise DataError(f"{path}: {name}_in has {n} rows but {name}_out has {targets.shape[0]}")
    if length == 0:
        raise DataError(f"{where}: the sequences have length 0")
    if targets.shape[1] == 0:
        raise DataError(f"{path}: {name}_out has no targets (shape {targets.shape})")
    if targets.dtype.kind not in "fiub":
        raise DataError(f"{path}: {name}_out: targets of dtype {targets.dtype} (expected numbers)")


def _read_targets(targets: h5py.Dataset, path: Path, name: str, store: Store) -> np.ndarray:
    """The targets, read in blocks: uint8 while every value is 0 or 1, float32 from the first
    block that is not (the rows before it converted). DataError for NaN or infinite values."""
    key = f"{name}_targets"
    out = store.new(key, targets.shape, np.uint8)
    bad_rows, block = 0, _block_rows(targets)
    for start in range(0, targets.shape[0], block):
        chunk = targets[start : start + block].astype(np.float32)
        bad_rows += int((~np.isfinite(chunk)).any(axis=1).sum())
        if out.dtype == np.uint8 and not ((chunk == 0) | (chunk == 1)).all():
            wide = store.new(key, targets.shape, np.float32)
            wide[:start] = out[:start]
            store.drop(key, out)
            out = wide
        out[start : start + len(chunk)] = chunk
    if bad_rows:
        raise DataError(f"{path}: {name}_out has NaN or infinite targets in {bad_rows} rows")
    return out


class _Shown:
    """A progress line every PROGRESS_EVERY_S while a long split loads."""

    def __init__(self, what: str, total: int) -> None:
        self.what, self.total = what, total
        self.start = self.last = time.monotonic()

    def now(self, done: int) -> None:
        if self.total < PROGRESS_ROWS:
            return
        at = time.monotonic()
        if at - self.last >= PROGRESS_EVERY_S or done == self.total:
            self.last = at
            log.info("loading %s: %s/%s sequences (%.0f s)", self.what, f"{done:,}",
                     f"{self.total:,}", at - self.start)


def _block_rows(dataset: h5py.Dataset) -> int:
    """Rows per read: about READ_BLOCK_BYTES, a whole number of HDF5 chunks."""
    row_bytes = max(1, int(np.prod(dataset.shape[1:])) * dataset.dtype.itemsize)
    chunk = dataset.chunks[0] if dataset.chunks else 1
    return max(chunk, READ_BLOCK_BYTES // row_bytes // chunk * chunk)


def non_onehot_fraction(sample: np.ndarray) -> float:
    """Share of the (N, 4, L) sample's positions that are neither one-hot nor N (all 0.25 for
    float one-hot, all zeros for compact)."""
    values = sample.astype(np.float32)
    high, low, total = values.max(axis=1), values.min(axis=1), values.sum(axis=1)
    base = (np.abs(high - 1) < 1e-3) & (np.abs(total - 1) < 1e-3) & (np.abs(low) < 1e-3)
    unknown = (np.abs(high - low) < 1e-3) & ((np.abs(high - 0.25) < 1e-3) | (np.abs(high) < 1e-3))
    return float((~(base | unknown)).mean()) if values.size else 0.0


def _check_onehot(sample: np.ndarray, where: str) -> None:
    wrong = non_onehot_fraction(sample)
    if wrong > 0:
        raise DataError(f"{where}: {SCRAMBLED} ({wrong:.0%} of sampled positions are not one-hot)")


def _decode(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v) for v in values]


def _headers(h5: h5py.File, path: Path, name: str, n: int) -> list[str] | None:
    if f"{name}_headers" not in h5:
        return None
    headers = _decode(_dataset(h5, path, f"{name}_headers")[()])
    if len(headers) != n:
        raise DataError(f"{path}: {name}_headers has {len(headers)} entries for {n} sequences")
    return headers


def _target_labels(h5: h5py.File, path: Path, width: int) -> list[str]:
    if "target_labels" not in h5:
        return [f"t{i}" for i in range(width)]
    labels = _decode(np.atleast_1d(_dataset(h5, path, "target_labels")[()]))
    if len(labels) != width:
        raise DataError(
            f"{path}: target_labels names {len(labels)} targets but the data has {width}"
        )
    repeated = sorted(label for label, n in Counter(labels).items() if n > 1)
    if repeated:
        raise DataError(f"{path}: target_labels repeats {', '.join(repeated[:3])}")
    return labels
