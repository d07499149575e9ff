"""benchmarks/peers/summary.py: the numbers every engine's row is made of (best-so-far curve,
busy share, overhead per trial, time to a target, means and spreads)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from peers.common import Epoch, Record, TrialRecord  # noqa: E402
from peers.summary import curve, make_row, table, time_to  # noqa: E402


def _record() -> Record:
    record = Record()
    for trial, epoch, t, valid in [("a", 1, 5.0, 0.6), ("b", 1, 6.0, 0.7), ("a", 2, 9.0, 0.65),
                                   ("b", 2, 11.0, 0.8), ("c", 1, 15.0, 0.75)]:
        record.add_epoch(Epoch(trial, epoch, t, valid, seconds=4.0))
    record.add_trial(TrialRecord("a", "pruned", 0.65, None, False, 2))
    record.add_trial(TrialRecord("b", "complete", 0.8, None, False, 2))
    record.add_trial(TrialRecord("c", "timeout", 0.75, None, False, 1))
    return record


def test_a_row_from_a_record(tmp_path: Path) -> None:
    record = _record()
    assert curve(record) == [(5.0, 0.6), (6.0, 0.7), (11.0, 0.8)]
    row = make_row("set", tmp_path / "none.h5", "engine", 1, record, wall=20.0)
    assert (row.started, row.finished, row.pruned) == (3, 2, 1)
    assert row.best_valid == 0.8 and math.isnan(row.test_auroc)  # no checkpoint to score
    assert row.busy == 20.0 / 40.0  # five epochs of 4 s over two workers x 20 s
    assert row.overhead_s == (40.0 - 20.0) / 3
    assert time_to(row, 0.7) == 6.0 and time_to(row, 0.9) == math.inf


def test_means_spreads_and_the_time_to_the_best_other(tmp_path: Path) -> None:
    rows = [make_row("set", tmp_path / "none.h5", engine, seed, _record(), wall=20.0)
            for engine in ("x", "y") for seed in (1, 2)]
    rows[2].curve = [(1.0, 0.9)]  # y, seed 1: better and sooner
    rows[2].best_valid = 0.9
    text = table(rows, budget=20.0)
    x_line = next(line for line in text.splitlines() if line.startswith("| set | x |"))
    y_line = next(line for line in text.splitlines() if line.startswith("| set | y |"))
    assert "| 2/2 | 0.8000 ± 0.0000" in x_line and "never (0/2)" in x_line  # y's mean: 0.85
    assert "0.8500 ± 0.0707" in y_line
    assert "0.30x budget (2/2)" in y_line  # x's 0.8: at 1 s and at 11 s


def test_a_seed_that_never_reaches_the_target_counts_as_the_whole_budget(
        tmp_path: Path) -> None:
    rows = [make_row("set", tmp_path / "none.h5", engine, seed, _record(), wall=20.0)
            for engine in ("x", "y") for seed in (1, 2)]
    for row in rows[:2]:  # x: 0.9 at the end, so y's seeds aim at 0.9
        row.best_valid = 0.9
    rows[2].curve = [(4.0, 0.95)]  # y, seed 1 gets there at 4 s; seed 2 never (its best 0.8)
    y_line = next(line for line in table(rows, budget=20.0).splitlines()
                  if line.startswith("| set | y |"))
    assert "0.60x budget (1/2)" in y_line  # (4 s + 20 s) / 2 over a 20 s budget
