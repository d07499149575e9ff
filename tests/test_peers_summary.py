"""benchmarks/peers/summary.py: the numbers every engine's row is made of (best-so-far curve,
busy share, overhead per trial, time to a target, means and spreads)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from peers.common import Epoch, Record, TrialRecord  # noqa: E402
from peers.summary import curve, make_row, table, time_to, verdicts  # noqa: E402

from basset import JobParams, TrainOptions, load_data, score_checkpoint, train  # noqa: E402
from hpo_testutil import write_h5  # noqa: E402
from synth_data import make_data  # noqa: E402


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


def test_every_trial_is_scored_on_test_and_the_best_of_them_is_reported(tmp_path: Path) -> None:
    """The selected trial (by validation) and the best test score of any trial: two trained
    models, the better-validated one given the worse validation value on purpose, so the two
    columns must differ."""
    data = write_h5(tmp_path / "set.h5", make_data(n_train=256, seq_len=50, seed=3))
    scores = {}
    record = Record()
    for name, rate in (("good", 0.01), ("poor", 1e-5)):
        params = JobParams(conv_filters=[8], conv_filter_sizes=[6], pool_width=[2],
                           hidden_units=[16], batch_size=32, learning_rate=rate).validate()
        result = train(params, load_data(data), options=TrainOptions(
            max_epochs=3, quiet=True, save_prefix=tmp_path / name))
        scores[name] = score_checkpoint(result.best_path, load_data(data, splits=("test",)),
                                        split="test").auroc
        record.add_epoch(Epoch(name, 1, 1.0, 0.5, seconds=1.0))
    record.add_trial(TrialRecord("good", "complete", 0.6, str(tmp_path / "good_best.pt"),
                                 False, 3))
    record.add_trial(TrialRecord("poor", "complete", 0.9, str(tmp_path / "poor_best.pt"),
                                 False, 3))
    record.add_trial(TrialRecord("lost", "complete", 0.7, str(tmp_path / "gone.pt"), False, 1))
    assert scores["good"] > scores["poor"] + 0.1
    row = make_row("set", data, "engine", 1, record, wall=5.0)
    assert row.test_auroc == scores["poor"]  # validation chose the poor one
    assert row.best_test == scores["good"]
    line = next(line for line in table([row], budget=5.0).splitlines()
                if line.startswith("| set | engine |"))
    assert f"| {scores['good']:.4f} |" in line


def test_the_acceptance_verdict_per_data_set(tmp_path: Path) -> None:
    """Ahead, level (within the best other's standard error) and behind, from selected test
    means; the time to the best other's validation against 0.7 x the budget."""
    rows = []
    tests = {"a": {"service": [0.90, 0.92], "x": [0.80, 0.90]},   # 0.91 vs 0.85: ahead
             "b": {"service": [0.84, 0.84], "x": [0.80, 0.90]},   # 0.84 vs 0.85 (se 0.05)
             "c": {"service": [0.70, 0.70], "x": [0.85, 0.85]}}   # behind
    for data, engines in tests.items():
        for engine, values in engines.items():
            for seed, test in enumerate(values, start=1):
                row = make_row(data, tmp_path / "none.h5", engine, seed, _record(), wall=20.0)
                row.test_auroc = test
                rows.append(row)
    service_curves = {"a": [(2.0, 0.8)], "b": [(10.0, 0.8)], "c": [(1.0, 0.5)]}
    for row in rows:  # x's final valid: 0.8; the service gets there at 2 s on a, never on c
        row.curve = service_curves[row.data] if row.engine == "service" else [(5.0, 0.8)]
    lines = verdicts(rows, budget=20.0)
    assert lines[0].startswith("a: service 0.9100 against x 0.8500 (se 0.0500): ahead")
    assert "0.10x the budget (2/2 seeds)" in lines[0]
    assert lines[1].startswith("b: service 0.8400 against x 0.8500 (se 0.0500): level")
    assert "0.50x the budget (2/2 seeds)" in lines[1]
    assert lines[2].startswith("c: service 0.7000 against x 0.8500 (se 0.0000): behind")
    assert "1.00x the budget (0/2 seeds)" in lines[2]
    assert lines[3] == "service: ahead or level on 2 of 3 sets; at most 0.7x the budget on 2 of 3"
    assert verdicts([r for r in rows if r.engine == "x"], budget=20.0) == []
