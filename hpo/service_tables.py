"""The service's own tables, in the study's database beside Optuna's (plain SQL can query them).

    sqlite3 studies/demo.db "select trial_number, epoch, valid_auroc from basset_epochs"
    sqlite3 studies/demo.db "select trial_number, auroc from basset_scores where split = 'test'"

basset_epochs: per-evaluation metrics of every trial. `epoch` numbers the evaluations (epochs,
or the study's eval_every intervals); `sequences` is the training sequences seen by then.

basset_scores: what the service computes after a trial finished (hpo.evaluate): per trial and
split, the mean and per-target AUROC/AUPRC of its best checkpoint (the per-target lists as
JSON, null for a target with one class). Optuna refuses to change a finished trial and migrates
its own tables between releases, so these never go into Optuna's tables.

basset_schema holds the version of these tables; create_tables brings an older database up to
it (tables and columns added; old rows hold NULL in new columns) and refuses a newer one.
Readers read an older database as it is (a missing table reads as no rows).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import sqlalchemy as sa

from basset import EpochMetrics, Scores
from hpo.errors import StorageError

metadata = sa.MetaData()

epochs = sa.Table(
    "basset_epochs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("trial_number", sa.Integer, nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("train_loss", sa.Float),
    sa.Column("valid_loss", sa.Float),
    sa.Column("valid_auroc", sa.Float),
    sa.Column("valid_auprc", sa.Float),
    sa.Column("seconds", sa.Float),
    sa.Column("seqs_per_sec", sa.Float),
    sa.Column("device", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sequences", sa.BigInteger),
    sa.UniqueConstraint("study_name", "trial_number", "epoch", name="uq_basset_epochs_epoch"),
)

scores = sa.Table(
    "basset_scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_name", sa.String(512), nullable=False),
    sa.Column("trial_number", sa.Integer, nullable=False),
    sa.Column("split", sa.String(16), nullable=False),
    sa.Column("auroc", sa.Float),  # mean over targets with both classes; NULL: none has
    sa.Column("auprc", sa.Float),
    sa.Column("target_auroc", sa.Text, nullable=False),  # JSON list, null for one class
    sa.Column("target_auprc", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("study_name", "trial_number", "split", name="uq_basset_scores_split"),
)

schema = sa.Table("basset_schema", metadata, sa.Column("version", sa.Integer, nullable=False))

# 1: basset_epochs; 2: basset_epochs.sequences, basset_scores, basset_schema
SCHEMA_VERSION = 2
ADDED_COLUMNS = ("sequences",)  # basset_epochs columns newer than the table's first release


def create_tables(engine: sa.Engine) -> None:
    """Create the service's tables that are missing, add the columns an older basset_epochs
    lacks and record the version (idempotent; the caller holds the database-wide lock).
    StorageError for a database a newer release made."""
    metadata.create_all(engine)
    missing = [name for name in ADDED_COLUMNS if name not in _columns(engine)]
    with engine.begin() as conn:
        for name in missing:
            column = epochs.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            conn.execute(sa.text(f"ALTER TABLE {epochs.name} ADD COLUMN {name} {kind}"))
        found = conn.execute(sa.select(sa.func.max(schema.c.version))).scalar()
        if found is not None and found > SCHEMA_VERSION:
            raise StorageError(f"the study database was made by a newer basset-hpo (tables "
                               f"version {found}, this one knows {SCHEMA_VERSION}): upgrade it")
        if found != SCHEMA_VERSION:
            conn.execute(schema.delete())
            conn.execute(schema.insert().values(version=SCHEMA_VERSION))


def _columns(engine: sa.Engine) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(epochs.name)}


def write_epoch(engine: sa.Engine, study_name: str, trial_number: int, m: EpochMetrics) -> None:
    """Record one epoch; a repeated (trial, epoch), e.g. after a restart, replaces the old row."""
    key = (
        (epochs.c.study_name == study_name)
        & (epochs.c.trial_number == trial_number)
        & (epochs.c.epoch == m.epoch)
    )
    row = {
        "study_name": study_name,
        "trial_number": trial_number,
        "epoch": m.epoch,
        "train_loss": m.train_loss,
        "valid_loss": m.valid_loss,
        "valid_auroc": m.valid_metric,
        "valid_auprc": m.valid_auprc,
        "seconds": m.seconds,
        "seqs_per_sec": m.seqs_per_sec,
        "device": m.device,
        "created_at": dt.datetime.now(dt.UTC),
        "sequences": m.sequences,
    }
    with engine.begin() as conn:
        conn.execute(epochs.delete().where(key))
        conn.execute(epochs.insert().values(**row))


def read_epochs(
    engine: sa.Engine, study_name: str, trial_number: int | None = None
) -> list[dict[str, Any]]:
    """Epoch rows of a study (or one trial), ordered by trial and epoch (an older database's
    rows, without the newer columns, hold None there)."""
    present = _columns(engine)
    query = sa.select(*[c for c in epochs.c if c.name in present])
    query = query.where(epochs.c.study_name == study_name)
    if trial_number is not None:
        query = query.where(epochs.c.trial_number == trial_number)
    query = query.order_by(epochs.c.trial_number, epochs.c.epoch)
    with engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    return [{**dict.fromkeys(ADDED_COLUMNS), **row} for row in rows]


def write_scores(engine: sa.Engine, study_name: str, trial_number: int, result: Scores) -> None:
    """Record a trial's scores on one split, replacing the ones it had there."""
    key = ((scores.c.study_name == study_name) & (scores.c.trial_number == trial_number)
           & (scores.c.split == result.split))
    row = {
        "study_name": study_name,
        "trial_number": trial_number,
        "split": result.split,
        "auroc": _finite_or_none(result.auroc),
        "auprc": _finite_or_none(result.auprc),
        "target_auroc": json.dumps([_finite_or_none(v) for v in result.target_auroc]),
        "target_auprc": json.dumps([_finite_or_none(v) for v in result.target_auprc]),
        "created_at": dt.datetime.now(dt.UTC),
    }
    with engine.begin() as conn:
        conn.execute(scores.delete().where(key))
        conn.execute(scores.insert().values(**row))


def read_scores(engine: sa.Engine, study_name: str, split: str) -> dict[int, Scores]:
    """The stored scores of a study's trials on `split`, trial number -> Scores (NaN for a
    target with one class); none in a database older than the table."""
    if not sa.inspect(engine).has_table(scores.name):
        return {}
    query = sa.select(scores.c.trial_number, scores.c.target_auroc, scores.c.target_auprc).where(
        (scores.c.study_name == study_name) & (scores.c.split == split))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {number: Scores(split, floats(json.loads(auroc)), floats(json.loads(auprc)))
            for number, auroc, auprc in rows}


def floats(values: list[float | None]) -> list[float]:
    """Stored per-target values (null: a target with one class) as floats (NaN)."""
    return [math.nan if v is None else float(v) for v in values]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
