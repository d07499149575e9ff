"""`basset-demo-data`: a deterministic Basset-like multi-task data set driven by real JASPAR motifs.

Each sequence belongs to a latent class (liver, blood, ESC, promoter, insulator or background)
that sets how likely each motif element is planted; every element also turns up at a low base
rate everywhere, as a decoy. Elements are sampled from JASPAR 2024 PFMs (pyjaspar's bundled
database, offline), put on a random strand at random non-overlapping positions, and the rest of
the sequence is GC-matched background: each sequence draws a GC content and its background is
tuned so that the whole sequence has that GC content whatever was planted, so GC alone predicts
little. The 12 targets are logical rules over the planted elements (single motifs, shared motifs,
AND, AND NOT, a SOX2-POU5F1 pair at a fixed spacing, two SP1 copies), followed by label noise.

Two sets (`--set`): `source` (the default: 6000 sequences of 200 bp, train 4000 / valid 1000 /
test 1000, the 12 targets above) and `transfer`, a small set for fine-tuning a model trained on
the source: other sequences (an independent random stream) and 8 other targets over the same
motifs, 600 training sequences (valid 300 / test 1000). uint8 one-hot (N as zeros; a quarter of
float16's size); `--dtype float16` writes Basset's float16. The source model a transfer study
fine-tunes is made in basset.demo_source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from rich.progress import Progress

from basset.data.h5write import ONEHOT_DTYPES, SplitArrays, write_basset_h5
from basset.data.splits import split_counts
from basset.errors import DataError
from basset.fileio import check_output_file
from basset.progress import progress_bars

log = logging.getLogger(__name__)

JASPAR_RELEASE = "JASPAR2024"
MOTIF_IDS = {
    "CTCF": "MA0139.2",
    "GATA1": "MA0035.3",
    "SPI1": "MA0080.7",
    "CEBPB": "MA0466.4",
    "FOXA1": "MA0148.4",
    "HNF4A": "MA0114.4",
    "POU5F1": "MA1115.2",
    "SOX2": "MA0143.5",
    "MAFK": "MA0496.4",
    "REST": "MA0138.3",
    "NRF1": "MA0506.3",
    "YY1": "MA0095.4",
    "SP1": "MA0079.5",
}
SOX_OCT_GAP = 3  # bp between SOX2 and POU5F1 in the composite element
PSEUDOCOUNT = 0.5  # per base, added to the JASPAR counts
SHARPEN = 2.0
DECOY_RATE = 0.06  # chance of each single-motif element in any sequence
COMPOSITE_DECOY_RATE = 0.02
GC_MEAN, GC_SD = 0.42, 0.07
FALSE_NEGATIVE, FALSE_POSITIVE = 0.06, 0.02  # label noise
CHUNK = 50_000  # sequences generated per step (fixed: the output depends on it)

# Elements: each motif once; "SOX_OCT" is SOX2 + gap + POU5F1 on one strand; "SP1_2" a second SP1.
ELEMENTS = (*MOTIF_IDS, "SOX_OCT", "SP1_2")

# Latent classes: (weight, {element: chance of being planted}) on top of the decoy rates.
CLASSES: dict[str, tuple[float, dict[str, float]]] = {
    "background": (0.20, {}),
    "liver": (0.17, {"FOXA1": 0.8, "HNF4A": 0.8, "CEBPB": 0.5}),
    "blood": (0.18, {"GATA1": 0.75, "SPI1": 0.45, "MAFK": 0.45, "CEBPB": 0.3}),
    "esc": (0.15, {"SOX_OCT": 0.6, "POU5F1": 0.35, "SOX2": 0.35}),
    "promoter": (0.16, {"SP1": 0.7, "SP1_2": 0.5, "NRF1": 0.45, "YY1": 0.45}),
    "insulator": (0.14, {"CTCF": 0.85, "REST": 0.45}),
}

Rule = Callable[[Mapping[str, np.ndarray]], np.ndarray]
# Targets: label -> rule over the planted elements (boolean arrays, one entry per sequence).
TARGETS: dict[str, Rule] = {
    "CTCF": lambda e: e["CTCF"],
    "GATA1": lambda e: e["GATA1"],
    "SPI1": lambda e: e["SPI1"],
    "CEBPB_not_REST": lambda e: e["CEBPB"] & ~e["REST"],
    "FOXA1_or_HNF4A": lambda e: e["FOXA1"] | e["HNF4A"],
    "FOXA1_and_HNF4A": lambda e: e["FOXA1"] & e["HNF4A"],
    "GATA1_not_SPI1": lambda e: e["GATA1"] & ~e["SPI1"],
    "OCT4": lambda e: e["POU5F1"] | e["SOX_OCT"],
    "SOX2_OCT4_pair": lambda e: e["SOX_OCT"],
    "MAFK": lambda e: e["MAFK"],
    "REST": lambda e: e["REST"],
    "promoter": lambda e: e["NRF1"] | e["YY1"] | (e["SP1"] & e["SP1_2"]),
}
# The transfer set's targets: other rules over the same elements (filters learnt on the source
# set serve them), none equal to a source target.
TRANSFER_TARGETS: dict[str, Rule] = {
    "HNF4A": lambda e: e["HNF4A"],
    "CEBPB": lambda e: e["CEBPB"],
    "SPI1_not_GATA1": lambda e: e["SPI1"] & ~e["GATA1"],
    "SOX2": lambda e: e["SOX2"] | e["SOX_OCT"],
    "POU5F1_alone": lambda e: e["POU5F1"] & ~e["SOX_OCT"],
    "CTCF_not_REST": lambda e: e["CTCF"] & ~e["REST"],
    "NRF1": lambda e: e["NRF1"],
    "SP1": lambda e: e["SP1"] | e["SP1_2"],
}


@dataclass(frozen=True)
class DemoPreset:
    """One kind of demo set: its targets, default sizes and random stream."""

    targets: dict[str, Rule]
    n_seqs: int
    valid: float  # fraction (< 1) or count
    test: float
    stream: tuple[int, ...]  # appended to the seed: sets made with one seed share no sequence


DEMO_SETS = {
    "source": DemoPreset(TARGETS, n_seqs=6000, valid=1 / 6, test=1 / 6, stream=()),
    "transfer": DemoPreset(TRANSFER_TARGETS, n_seqs=1900, valid=300, test=1000, stream=(1,)),
}


@cache
def element_probs() -> dict[str, np.ndarray]:
    """Per-element (width, 4) base probabilities (A,C,G,T) from the bundled JASPAR PFMs."""
    from pyjaspar import jaspardb  # loads Bio.motifs: only when data is generated

    db = jaspardb(release=JASPAR_RELEASE)
    probs = {}
    for name, matrix_id in MOTIF_IDS.items():
        motif = db.fetch_motif_by_id(matrix_id)
        if motif is None:
            raise DataError(f"JASPAR motif {matrix_id} ({name}) not in pyjaspar's {JASPAR_RELEASE}")
        counts = np.array([motif.counts[base] for base in "ACGT"], dtype=np.float64).T + PSEUDOCOUNT
        sharp = (counts / counts.sum(axis=1, keepdims=True)) ** SHARPEN
        probs[name] = sharp / sharp.sum(axis=1, keepdims=True)
    gap = np.full((SOX_OCT_GAP, 4), 0.25)
    probs["SOX_OCT"] = np.concatenate([probs["SOX2"], gap, probs["POU5F1"]])
    probs["SP1_2"] = probs["SP1"]
    return probs


@dataclass
class DemoSet:
    codes: np.ndarray  # (N, L) uint8
    targets: np.ndarray  # (N, T) int8
    elements: dict[str, np.ndarray]  # element -> (N,) bool, what was planted


def _presence(n: int, seq_len: int, widths: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, E) bool: which elements each sequence gets; drops elements that would not fit."""
    names = list(CLASSES)
    weights = np.array([CLASSES[c][0] for c in names])
    chance = np.array(
        [
            [
                CLASSES[c][1].get(e, COMPOSITE_DECOY_RATE if e == "SOX_OCT" else DECOY_RATE)
                for e in ELEMENTS
            ]
            for c in names
        ]
    )
    cls = rng.choice(len(names), size=n, p=weights / weights.sum())
    present = rng.random((n, len(ELEMENTS))) < chance[cls]
    too_long = (present * widths).sum(axis=1) > seq_len
    if too_long.any():  # keep a random subset that fits
        keys = rng.random((int(too_long.sum()), len(ELEMENTS)))
        order = np.argsort(keys, axis=1)
        sub = present[too_long]
        fits = np.cumsum(np.take_along_axis(sub * widths, order, axis=1), axis=1) <= seq_len
        np.put_along_axis(sub, order, np.take_along_axis(sub, order, axis=1) & fits, axis=1)
        present[too_long] = sub
    return present


def _starts(
    present: np.ndarray, widths: np.ndarray, seq_len: int, rng: np.random.Generator
) -> np.ndarray:
    """(n, E) start positions: elements in random order with random gaps, never overlapping."""
    n, n_el = present.shape
    order = np.argsort(rng.random((n, n_el)), axis=1)
    sorted_widths = np.take_along_axis(present * widths, order, axis=1)
    free = seq_len - sorted_widths.sum(axis=1)
    gaps = np.sort(rng.integers(0, free[:, None] + 1, size=(n, n_el)), axis=1)
    starts_sorted = np.cumsum(sorted_widths, axis=1) - sorted_widths + gaps
    starts = np.empty_like(starts_sorted)
    np.put_along_axis(starts, order, starts_sorted, axis=1)
    return starts


def _sample(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, width) codes drawn from a (width, 4) PFM, each on a random strand."""
    cdf = np.cumsum(probs, axis=1)[:, :3]
    codes = (rng.random((n, len(probs)))[:, :, None] > cdf).sum(axis=2).astype(np.uint8)
    minus = rng.random(n) < 0.5
    codes[minus] = 3 - codes[minus, ::-1]
    return codes


def generate(
    n: int, seq_len: int, rng: np.random.Generator, targets: Mapping[str, Rule] = TARGETS
) -> DemoSet:
    """n demo sequences of seq_len bp with their targets (one call = one chunk)."""
    probs = element_probs()
    widths = np.array([len(probs[e]) for e in ELEMENTS])
    present = _presence(n, seq_len, widths, rng)
    starts = _starts(present, widths, seq_len, rng)
    planted = []  # per element: (rows it is planted in, sampled instances)
    for j, element in enumerate(ELEMENTS):
        rows = np.flatnonzero(present[:, j])
        planted.append((rows, _sample(probs[element], len(rows), rng)))

    # GC-matched background: whole-sequence GC ~ the drawn content, whatever was planted.
    gc_target = np.clip(rng.normal(GC_MEAN, GC_SD, n), 0.2, 0.8) * seq_len
    planted_gc, planted_len = np.zeros(n), np.zeros(n)
    for rows, inst in planted:
        np.add.at(planted_gc, rows, ((inst == 1) | (inst == 2)).sum(axis=1))
        np.add.at(planted_len, rows, inst.shape[1])
    p_gc = np.clip((gc_target - planted_gc) / np.maximum(seq_len - planted_len, 1), 0.05, 0.95)
    u = rng.random((n, seq_len), dtype=np.float32)
    p = p_gc[:, None].astype(np.float32)
    a, c, g, t = (np.uint8(code) for code in range(4))
    codes = np.where(u < p, np.where(u < p / 2, c, g), np.where(u < (1 + p) / 2, a, t))
    for j, (rows, inst) in enumerate(planted):
        cols = starts[rows, j][:, None] + np.arange(inst.shape[1])
        codes[rows[:, None], cols] = inst

    elements = {e: present[:, j] for j, e in enumerate(ELEMENTS)}
    labels = np.stack([rule(elements) for rule in targets.values()], axis=1)
    flip = rng.random(labels.shape) < np.where(labels, FALSE_NEGATIVE, FALSE_POSITIVE)
    return DemoSet(codes=codes, targets=(labels ^ flip).astype(np.int8), elements=elements)


def generate_all(
    n: int, seq_len: int, seed: int, progress: Progress | None = None, preset: str = "source"
) -> DemoSet:
    """n sequences in fixed-size chunks from one seeded generator (deterministic)."""
    kind = DEMO_SETS[preset]
    rng = np.random.default_rng([seed, *kind.stream] if kind.stream else seed)
    task = progress.add_task("generating", total=n) if progress else None
    parts = []
    for start in range(0, n, CHUNK):
        parts.append(generate(min(CHUNK, n - start), seq_len, rng, kind.targets))
        if progress is not None and task is not None:
            progress.update(task, completed=start + len(parts[-1].codes))
    return DemoSet(
        codes=np.concatenate([p.codes for p in parts]),
        targets=np.concatenate([p.targets for p in parts]),
        elements={e: np.concatenate([p.elements[e] for p in parts]) for e in ELEMENTS},
    )


def min_seq_len() -> int:
    """The widest element: shorter sequences cannot hold it."""
    return max(len(p) for p in element_probs().values())


def make_demo(
    path: str | Path,
    *,
    preset: str = "source",
    seed: int = 1,
    n_seqs: int | None = None,
    seq_len: int = 200,
    valid: float | None = None,
    test: float | None = None,
    onehot_dtype: str = "uint8",
    quiet: bool = True,
) -> Path:
    """Write a demo HDF5 in Basset's layout (train, valid, test in that order; the sequences are
    independent draws, so the splits are consecutive blocks). `preset`: a DEMO_SETS key, whose
    sizes fill in those not given; `valid`/`test`: fraction or count."""
    path = check_output_file(path)
    if preset not in DEMO_SETS:
        raise DataError(f"unknown demo set {preset!r} (use {', '.join(DEMO_SETS)})")
    kind = DEMO_SETS[preset]
    n_seqs = kind.n_seqs if n_seqs is None else n_seqs
    valid = kind.valid if valid is None else valid
    test = kind.test if test is None else test
    if seq_len < min_seq_len():
        raise DataError(f"--seq-len must be at least {min_seq_len()} bp (the widest motif element)")
    n_train, n_valid, n_test = split_counts(n_seqs, valid, test)
    if onehot_dtype not in ONEHOT_DTYPES:
        raise DataError(f"unknown one-hot dtype {onehot_dtype!r} (use {', '.join(ONEHOT_DTYPES)})")
    with progress_bars(quiet) as progress:
        demo = generate_all(n_seqs, seq_len, seed, progress, preset)
        bounds = {
            "train": (0, n_train),
            "valid": (n_train, n_train + n_valid),
            "test": (n_train + n_valid, n_seqs),
        }
        splits = {
            name: SplitArrays(demo.codes[a:b], demo.targets[a:b], [f"demo{i}" for i in range(a, b)])
            for name, (a, b) in bounds.items()
        }
        write_basset_h5(
            path, splits, list(kind.targets), onehot_dtype=onehot_dtype, progress=progress
        )
    rates = ", ".join(
        f"{label} {rate:.0%}"
        for label, rate in zip(kind.targets, demo.targets.mean(axis=0), strict=True)
    )
    log.info(
        "wrote %s: train %d, valid %d, test %d of %d bp; positives: %s",
        path,
        n_train,
        n_valid,
        n_test,
        seq_len,
        rates,
    )
    return path
