"""Progress inside an epoch: the worker's throttled reports and the display's cells and lines,
with a fake clock; the epoch table's sequences column (older tables migrated)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from basset import EpochMetrics, TrainProgress
from hpo import progress, service_tables, trialprogress
from hpo.trialprogress import ProgressReporter


class FakeTrial:
    def __init__(self) -> None:
        self.attrs: list[dict[str, Any]] = []

    def set_user_attr(self, key: str, value: Any) -> None:
        assert key == "progress"
        self.attrs.append(value)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _step(sequences: int, to_next: int, epoch_done: int) -> TrainProgress:
    return TrainProgress(epoch=2, epoch_done=epoch_done, epoch_size=1_000_000,
                         to_next_eval=to_next, sequences=sequences)


def test_reports_are_throttled_and_measure_seq_per_s_between_evaluations() -> None:
    trial, clock = FakeTrial(), Clock()
    reporter = ProgressReporter(trial, every=10, clock=clock, wall=lambda: 5000.0)  # type: ignore[arg-type]
    reporter(_step(1_000_000, 150_000, 0))  # the first step starts the window
    clock.now += 4
    reporter(_step(1_002_000, 148_000, 2_000))
    assert trial.attrs == []  # within 10 s of the start: nothing written
    clock.now += 6
    reporter(_step(1_005_000, 145_000, 5_000))
    assert trial.attrs == [{"epoch": 2, "epoch_done": 5_000, "epoch_size": 1_000_000,
                            "seqs_per_sec": 500.0, "next_eval_s": 290.0, "at": 5000.0}]
    clock.now += 30  # a validation pass: not counted in the next rate
    reporter.evaluated(1_150_000)
    clock.now += 20
    reporter(_step(1_170_000, 180_000, 170_000))
    assert trial.attrs[-1]["seqs_per_sec"] == 1000.0
    assert trial.attrs[-1]["next_eval_s"] == 180.0


def test_cells_and_lines_count_down_to_the_next_evaluation() -> None:
    stored = {"epoch": 2, "epoch_done": 45_000, "epoch_size": 1_930_000, "seqs_per_sec": 1234.4,
              "next_eval_s": 400.0, "at": 1000.0}
    trial = optuna.trial.create_trial(
        state=TrialState.COMPLETE, value=0.8, intermediate_values={1: 0.71, 2: 0.75},
        user_attrs={"progress": stored, "worker": "h/0", "device": "cuda:0"})
    assert trialprogress.cells(trial, now=1100.0) == (
        "epoch 2: 45,000/1,930,000", "1,234", "5 min")
    assert trialprogress.cells(trial, now=1350.0)[2] == "50 s"
    assert trialprogress.cells(trial, now=2000.0)[2] == "0 s"  # overdue: no negative times
    line = trialprogress.trial_line(trial, 2, 0.75, now=1100.0, max_steps=300)
    assert line == ("  trial -1 (h/0, cuda:0): evaluation 2/300, valid AUROC 0.7500; "
                    "epoch 2: 45,000/1,930,000 sequences, 1,234 seq/s, next evaluation in 5 min")
    fresh = optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.5)
    assert trialprogress.cells(fresh, now=0.0) == ("-", "-", "-")
    assert [trialprogress.duration(s) for s in (None, 42, 600, 9000)] == [
        "-", "42 s", "10 min", "2.5 h"]


def test_the_live_table_has_the_progress_columns() -> None:
    trial = optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.8,
                                      user_attrs={"worker": "h/0"})
    snap = progress.Snapshot("s", dict.fromkeys(progress.STATES, 0), 0, None, [trial], [])
    table = progress.running_table(snap, 300, now=0.0)
    assert [c.header for c in table.columns] == [
        "worker", "device", "trial", "evaluation", "valid AUROC", "sequences", "seq/s",
        "next evaluation"]
    assert progress.trial_lines(snap, 300, now=0.0) == [
        "  trial -1 (h/0, ?): evaluation 0/300, valid AUROC -; - sequences, - seq/s, next "
        "evaluation in -"]


def test_an_older_epoch_table_gets_the_sequences_column_and_stays_readable(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/old.db")
    old = sa.MetaData()
    sa.Table("basset_epochs", old, *[sa.Column(c.name, c.type, primary_key=c.primary_key)
                                     for c in service_tables.epochs.c if c.name != "sequences"])
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("insert into basset_epochs (study_name, trial_number, epoch, "
                             "valid_auroc, created_at) values ('s', 0, 1, 0.7, '2026-01-01')"))
    rows = service_tables.read_epochs(engine, "s")
    assert [(r["epoch"], r["sequences"]) for r in rows] == [(1, None)]
    service_tables.create_tables(engine)
    service_tables.create_tables(engine)  # idempotent
    service_tables.write_epoch(engine, "s", 0, EpochMetrics(
        epoch=2, train_loss=1.0, valid_loss=1.0, valid_metric=0.8, valid_auprc=0.5,
        target_metric=[0.8], target_auprc=[0.5], seconds=1.0, seqs_per_sec=10.0,
        learning_rate=0.01, is_best=True, sequences=640))
    rows = service_tables.read_epochs(engine, "s")
    assert [(r["epoch"], r["valid_auroc"], r["sequences"]) for r in rows] == [
        (1, 0.7, None), (2, 0.8, 640)]
