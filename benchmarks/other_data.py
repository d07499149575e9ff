"""Multi-task data sets built unlike the demo's, to check that the demo study generalises.

`--kind motifs` (the default):
The demo (basset.data.demo) plants JASPAR motifs in GC-matched background and labels sequences by
logical rules with flip noise. This set shares none of that: 300 bp of first-order Markov
background (CpG-depleted, each sequence with its own AT richness), eight random PWMs (not JASPAR)
of widths 8-16 and uneven information content planted a Poisson number of times on random
strands, and ten targets whose log-odds mix motif dosage (counts), position (the central 100 bp
only), a spaced pair in fixed orientation, a repressor and GC content; labels are drawn from the
logistic of that score, so the noise is graded, not flipped.

`--kind words`: a set that suits k-mer counting: 400 bp of i.i.d. background with per-sequence
GC, thirty short words (6-8 bp, one base mutated in 30 % of the copies) planted a Poisson number of
times on either strand, and sixteen targets in four correlated groups whose log-odds are sparse
weighted sums of the word counts plus a GC term: dosage everywhere, position nowhere.

`--kind long`: Basset's sequence length and many targets, where every trial is dear: 600 bp of
i.i.d. background with per-sequence GC, sixteen random PWMs planted a Poisson number of times,
and twenty-four targets whose log-odds are sparse mixes of motif presence, dosage and central
position (the middle 200 bp) plus a GC term.

    python benchmarks/other_data.py other.h5 [--kind motifs|words|long] [--seed 7] [--n-seqs 6000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from basset.data.h5write import SplitArrays, write_basset_h5

SEQ_LEN = 300
N_MOTIFS = 8
RATES = np.array([0.5, 0.4, 0.35, 0.3, 0.3, 0.25, 0.25, 0.2])  # Poisson sites per sequence


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    at = np.clip(rng.normal(0.58, 0.06, n), 0.4, 0.75)  # per-sequence AT richness
    codes = np.empty((n, SEQ_LEN), np.uint8)
    base_p = np.stack([at / 2, (1 - at) / 2, (1 - at) / 2, at / 2], axis=1)
    codes[:, 0] = (rng.random(n)[:, None] > np.cumsum(base_p, axis=1)).sum(axis=1)
    for j in range(1, SEQ_LEN):
        p = base_p.copy()
        p[codes[:, j - 1] == 1, 2] *= 0.25  # C followed by G: CpG depletion
        p /= p.sum(axis=1, keepdims=True)
        codes[:, j] = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return np.minimum(codes, 3)


def _pwms(rng: np.random.Generator, count: int = N_MOTIFS) -> list[np.ndarray]:
    pwms = []
    for width in rng.integers(8, 17, count):
        concentration = rng.choice([0.05, 0.1, 0.3], size=width)  # low: a sharp position
        pwms.append(np.stack([rng.dirichlet(np.full(4, c)) for c in concentration]))
    return pwms


def _plant(rng: np.random.Generator, codes: np.ndarray, pwm: np.ndarray, rows: np.ndarray,
           low: int, high: int) -> np.ndarray:
    """Plant one site of `pwm` in each of `rows` at a start in [low, high); return the starts."""
    width = len(pwm)
    starts = rng.integers(low, high - width + 1, len(rows))
    site = (rng.random((len(rows), width))[..., None] > np.cumsum(pwm, axis=1)).sum(-1)
    site = np.minimum(site, 3).astype(np.uint8)
    reverse = rng.random(len(rows)) < 0.5
    site[reverse] = 3 - site[reverse, ::-1]
    for row, start, s in zip(rows, starts, site, strict=True):
        codes[row, start:start + width] = s
    return starts


def generate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    codes = _background(rng, n)
    pwms = _pwms(rng)
    counts = rng.poisson(RATES, size=(n, N_MOTIFS))
    central = np.zeros((n, N_MOTIFS), bool)
    for m, pwm in enumerate(pwms):
        for k in range(counts[:, m].max()):
            rows = np.flatnonzero(counts[:, m] > k)
            starts = _plant(rng, codes, pwm, rows, 0, SEQ_LEN)
            central[rows, m] |= (starts >= 100) & (starts + len(pwm) <= 200)
    # The pair: motif 6 then motif 7 on the forward strand, 12 bp apart, in 15 % of sequences.
    pair = rng.random(n) < 0.15
    rows = np.flatnonzero(pair)
    starts = rng.integers(0, SEQ_LEN - len(pwms[6]) - 12 - len(pwms[7]), len(rows))
    for row, start in zip(rows, starts, strict=True):
        for pwm, at in ((pwms[6], start), (pwms[7], start + len(pwms[6]) + 12)):
            site = (rng.random((len(pwm), 1)) > np.cumsum(pwm, axis=1)).sum(-1)
            codes[row, at:at + len(pwm)] = np.minimum(site, 3)
    gc = np.isin(codes, (1, 2)).mean(axis=1)
    gc = (gc - gc.mean()) / gc.std()
    c = np.minimum(counts, 3)
    score = {
        "dose0": 1.6 * c[:, 0] - 2.0,
        "dose1_ge2": 3.0 * (counts[:, 1] >= 2) + 0.8 * c[:, 1] - 3.0,
        "central2": 3.5 * central[:, 2] + 0.5 * c[:, 2] - 2.5,
        "m3_not_m4": 3.0 * (c[:, 3] > 0) - 3.0 * (c[:, 4] > 0) - 1.5,
        "m0_and_m5": 2.2 * ((c[:, 0] > 0) & (c[:, 5] > 0)) + 0.6 * c[:, 5] - 2.5,
        "pair67": 4.0 * pair - 2.8,
        "gc_m2": 0.9 * gc + 1.5 * c[:, 2] - 2.0,
        "any_of_3": 2.0 * ((c[:, 1] + c[:, 3] + c[:, 5]) > 0) - 2.0,
        "m4_central_or_m7": 2.5 * (central[:, 4] | (c[:, 7] > 1)) - 2.5,
        "weighted": 0.8 * c[:, 0] - 0.9 * c[:, 1] + 1.1 * c[:, 6] + 0.7 * c[:, 7] - 1.0,
    }
    logits = np.stack(list(score.values()), axis=1)
    targets = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    return codes, targets, list(score)


WORDS_LEN, N_WORDS, N_GROUPS, PER_GROUP = 400, 30, 4, 4


def generate_words(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    gc = np.clip(rng.normal(0.42, 0.05, n), 0.3, 0.6)
    base_p = np.stack([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1)
    draws = rng.random((n, WORDS_LEN))[..., None] > np.cumsum(base_p, axis=1)[:, None, :]
    codes = np.minimum(draws.sum(-1), 3).astype(np.uint8)
    words = [rng.integers(0, 4, rng.integers(6, 9)).astype(np.uint8) for _ in range(N_WORDS)]
    counts = rng.poisson(rng.uniform(0.2, 1.2, N_WORDS), size=(n, N_WORDS))
    for w, word in enumerate(words):
        for k in range(counts[:, w].max()):
            rows = np.flatnonzero(counts[:, w] > k)
            starts = rng.integers(0, WORDS_LEN - len(word), len(rows))
            for row, start in zip(rows, starts, strict=True):
                site = word.copy()
                if rng.random() < 0.3:
                    site[rng.integers(len(site))] = rng.integers(4)
                if rng.random() < 0.5:
                    site = 3 - site[::-1]
                codes[row, start:start + len(site)] = site
    group = rng.normal(0, 1, (N_GROUPS, N_WORDS)) * (rng.random((N_GROUPS, N_WORDS)) < 0.3)
    own = rng.normal(0, 0.4, (N_GROUPS * PER_GROUP, N_WORDS))
    weights = np.repeat(group, PER_GROUP, axis=0) + own * (rng.random(own.shape) < 0.2)
    gc_z = (np.isin(codes, (1, 2)).mean(axis=1) - 0.42) / 0.05
    logits = 0.8 * counts @ weights.T + 0.3 * gc_z[:, None] * rng.normal(0, 1, len(weights))
    logits -= np.quantile(logits, 0.75, axis=0)  # about a quarter positive per target
    targets = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    labels = [f"group{t // PER_GROUP}_{t % PER_GROUP}" for t in range(len(weights))]
    return codes, targets, labels


LONG_LEN, LONG_MOTIFS, LONG_TARGETS = 600, 16, 24


def generate_long(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    gc = np.clip(rng.normal(0.42, 0.05, n), 0.3, 0.6)
    base_p = np.stack([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2], axis=1)
    draws = rng.random((n, LONG_LEN))[..., None] > np.cumsum(base_p, axis=1)[:, None, :]
    codes = np.minimum(draws.sum(-1), 3).astype(np.uint8)
    pwms = _pwms(rng, LONG_MOTIFS)
    counts = rng.poisson(rng.uniform(0.15, 0.6, LONG_MOTIFS), size=(n, LONG_MOTIFS))
    central = np.zeros((n, LONG_MOTIFS), bool)
    for m, pwm in enumerate(pwms):
        for k in range(counts[:, m].max()):
            rows = np.flatnonzero(counts[:, m] > k)
            starts = _plant(rng, codes, pwm, rows, 0, LONG_LEN)
            central[rows, m] |= (starts >= 200) & (starts + len(pwm) <= 400)
    features = np.concatenate([counts > 0, np.minimum(counts, 3), central], axis=1).astype(float)
    weights = rng.normal(0, 1.5, (LONG_TARGETS, features.shape[1]))
    weights *= rng.random(weights.shape) < 0.12
    gc_z = (np.isin(codes, (1, 2)).mean(axis=1) - 0.42) / 0.05
    logits = features @ weights.T + 0.4 * gc_z[:, None] * rng.normal(0, 1, LONG_TARGETS)
    logits -= np.quantile(logits, 0.7, axis=0)  # about 30 % positive per target
    targets = (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.int8)
    return codes, targets, [f"long{t}" for t in range(LONG_TARGETS)]


KINDS = {"motifs": generate, "words": generate_words, "long": generate_long}


def make_other(path: Path, *, kind: str = "motifs", n_seqs: int = 6000, seed: int = 7) -> Path:
    """Write the set in Basset's layout, split 2/3 train, 1/6 valid, 1/6 test."""
    codes, targets, labels = KINDS[kind](n_seqs, seed)
    n_train, n_valid = n_seqs * 2 // 3, n_seqs // 6
    bounds = {"train": (0, n_train), "valid": (n_train, n_train + n_valid),
              "test": (n_train + n_valid, n_seqs)}
    splits = {name: SplitArrays(codes[a:b], targets[a:b], [f"other{i}" for i in range(a, b)])
              for name, (a, b) in bounds.items()}
    return write_basset_h5(path, splits, labels, onehot_dtype="uint8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kind", choices=sorted(KINDS), default="motifs")
    parser.add_argument("--n-seqs", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    make_other(args.out, kind=args.kind, n_seqs=args.n_seqs, seed=args.seed)


if __name__ == "__main__":
    main()
