"""JASPAR CORE vertebrate motifs, offline (pyjaspar's bundled SQLite), and TOMTOM comparisons
(memelite's pure-Python implementation)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import false_discovery_control

log = logging.getLogger(__name__)

UNIFORM = 1e-6  # a column this close to 0.25 everywhere carries no pattern


@dataclass(frozen=True)
class Motif:
    matrix_id: str  # e.g. MA0496.4
    name: str  # e.g. MAFK
    pwm: np.ndarray  # (4, w) probabilities, rows A,C,G,T


@dataclass(frozen=True)
class Match:
    """The best database motif for one query, on the strand where it matched."""

    motif: Motif
    p_value: float
    q_value: float
    reverse: bool  # the reverse complement of the database motif matched


@functools.cache
def jaspar_vertebrates() -> tuple[Motif, ...]:
    """JASPAR CORE vertebrate motifs (latest versions) from pyjaspar's bundled SQLite database of
    its latest release; offline. Cached per process.

    The selection of pyjaspar's fetch_motifs(collection="CORE", tax_group=["vertebrates"]), read
    in three bulk queries (pyjaspar runs several per motif, and the tables have no indexes).
    """
    from pyjaspar import jaspardb  # imported here: only basset-motifs needs it

    db = jaspardb()
    cursor = db.conn.cursor()
    vertebrate = {
        int_id
        for (int_id,) in cursor.execute(
            "SELECT ID FROM MATRIX_ANNOTATION WHERE TAG = 'tax_group' AND VAL = 'vertebrates'"
        )
    }
    matrices = cursor.execute(
        "SELECT ID, COLLECTION, BASE_ID, VERSION, NAME FROM MATRIX"
    ).fetchall()
    latest: dict[str, int] = {}
    for _id, _collection, base_id, version, _name in matrices:
        latest[base_id] = max(version, latest.get(base_id, version))
    rows = [
        (int_id, f"{base_id}.{version}", name)
        for int_id, collection, base_id, version, name in sorted(
            matrices, key=lambda m: (m[2], m[3])
        )
        if collection == "CORE" and int_id in vertebrate and version == latest[base_id]
    ]
    counts: dict[int, np.ndarray] = {}
    row_of = {base: i for i, base in enumerate("ACGT")}
    for int_id, base, col, value in cursor.execute(
        f"SELECT ID, row, col, val FROM MATRIX_DATA WHERE ID IN ({','.join('?' * len(rows))})",
        [r[0] for r in rows],
    ):
        matrix = counts.setdefault(int_id, np.zeros((4, 0)))
        if col > matrix.shape[1]:
            matrix = counts[int_id] = np.pad(matrix, ((0, 0), (0, col - matrix.shape[1])))
        matrix[row_of[base], col - 1] = value
    motifs = tuple(
        Motif(matrix_id, name, counts[int_id] / counts[int_id].sum(axis=0))
        for int_id, matrix_id, name in rows
    )
    log.debug("loaded %d JASPAR motifs (%s)", len(motifs), db.release)
    return motifs


def pearson_columns(pwm: np.ndarray) -> np.ndarray:
    """Each column minus the uniform 0.25, scaled to unit length (a uniform column becomes 0).

    For such columns the Euclidean distance memelite's TOMTOM scores is sqrt(2 - 2r), r the
    Pearson correlation of the original columns: comparing them is TOMTOM -dist pearson, the
    distance Basset used. Plain Euclidean distance on probabilities rates a weak, nearly uniform
    filter column as a near-perfect match for the rare nearly uniform database columns (the
    spacers of long motifs such as CTCF's), so any diffuse filter "matches" them with p < 1e-10.
    """
    centred = pwm - 0.25
    norm = np.linalg.norm(centred, axis=0, keepdims=True)
    return np.where(norm > UNIFORM, centred / np.maximum(norm, UNIFORM), 0.0)


def best_matches(queries: Sequence[np.ndarray], targets: Sequence[Motif]) -> list[Match | None]:
    """TOMTOM (Pearson column scores) of each (4, w) query PWM against every target, both strands;
    the best target by p-value for each query, None for a uniform query. q-values are
    Benjamini-Hochberg over the query's comparisons with all targets (TOMTOM's convention)."""
    columns = [pearson_columns(np.asarray(q, dtype=np.float64)) for q in queries]
    informative = [i for i, c in enumerate(columns) if c.any()]
    matches: list[Match | None] = [None] * len(queries)
    if not informative:
        return matches
    from memelite import tomtom  # numba-compiled: the first call in a fresh install takes ~40 s

    p_values, _scores, _offsets, _overlaps, strands = tomtom(
        [columns[i] for i in informative], [pearson_columns(t.pwm) for t in targets]
    )
    for i, row, strand in zip(informative, p_values, strands, strict=True):
        row = np.clip(np.nan_to_num(row, nan=1.0), 0.0, 1.0)
        q_values = false_discovery_control(row, method="bh")
        best = int(np.argmin(row))
        matches[i] = Match(
            targets[best], float(row[best]), float(q_values[best]), bool(strand[best])
        )
    return matches
