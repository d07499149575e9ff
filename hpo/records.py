"""Per-epoch metrics of every trial, in the study's own database (plain SQL can query them).

    sqlite3 studies/demo.db "select trial_number, epoch, valid_auroc from basset_epochs"
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
    sa.UniqueConstraint("study_name", "trial_number", "epoch", name="uq_basset_epochs_epoch"),
)


def create_tables(engine: sa.Engine) -> None:
    """Create basset_epochs if it is missing (idempotent)."""
    metadata.create_all(engine)


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
    }
    with engine.begin() as conn:
        conn.execute(epochs.delete().where(key))
        conn.execute(epochs.insert().values(**row))


def read_epochs(
    engine: sa.Engine, study_name: str, trial_number: int | None = None
) -> list[dict[str, Any]]:
    """Epoch rows of a study (or one trial), ordered by trial and epoch."""
    query = sa.select(epochs).where(epochs.c.study_name == study_name)
    if trial_number is not None:
        query = query.where(epochs.c.trial_number == trial_number)
    query = query.order_by(epochs.c.trial_number, epochs.c.epoch)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
