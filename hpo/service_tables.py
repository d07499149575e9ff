"""Per-evaluation metrics of every trial, in the study's own database (plain SQL can query them).

    sqlite3 studies/demo.db "select trial_number, epoch, valid_auroc from basset_epochs"

`epoch` numbers the evaluations (epochs, or the study's eval_every intervals); `sequences` is
the training sequences seen by then. Databases made before that column get it added by
create_tables (their rows hold NULL there), and read_epochs reads them either way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from basset import EpochMetrics

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


ADDED_COLUMNS = ("sequences",)  # columns newer than the table's first release


def create_tables(engine: sa.Engine) -> None:
    """Create basset_epochs if it is missing, add the columns an older one lacks (idempotent;
    the caller holds the database-wide lock)."""
    metadata.create_all(engine)
    missing = [name for name in ADDED_COLUMNS if name not in _columns(engine)]
    with engine.begin() as conn:
        for name in missing:
            column = epochs.c[name]
            kind = column.type.compile(dialect=engine.dialect)
            conn.execute(sa.text(f"ALTER TABLE {epochs.name} ADD COLUMN {name} {kind}"))


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
