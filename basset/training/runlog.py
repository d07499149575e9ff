"""The run log: PREFIX_metrics.tsv (one row per epoch) and Basset's per-epoch line."""

from __future__ import annotations

from pathlib import Path

from basset.fileio import write_text_atomic
from basset.training.seam import EpochMetrics

# (column, EpochMetrics field): valid_auroc, as Basset named it, holds R2 for regression targets.
TSV_COLUMNS = (
    ("epoch", "epoch"),
    ("train_loss", "train_loss"),
    ("valid_loss", "valid_loss"),
    ("valid_auroc", "valid_metric"),
    ("valid_auprc", "valid_auprc"),
    ("seconds", "seconds"),
    ("learning_rate", "learning_rate"),
)


def write_metrics_tsv(path: Path, history: list[EpochMetrics]) -> None:
    """Every epoch so far (a restarted run's too), rewritten atomically after each epoch."""
    rows = ["\t".join(column for column, _ in TSV_COLUMNS)]
    for m in history:
        rows.append("\t".join(str(getattr(m, name)) for _, name in TSV_COLUMNS))
    write_text_atomic(path, "\n".join(rows) + "\n")


def epoch_line(m: EpochMetrics, target_type: str, rate_drop: bool) -> str:
    """basset_train.lua's line: losses, the validation metric (AUC, or R2 for regression
    targets), time, and whether the epoch was a new best or dropped the learning rate."""
    shown = f"{m.seconds / 60:3.0f}m" if m.seconds >= 600 else f"{m.seconds:3.0f}s"
    metric = "AUC" if target_type == "binary" else "R2"
    line = (
        f"Epoch #{m.epoch:3d}   train loss = {m.train_loss:7.3f}, valid loss = "
        f"{m.valid_loss:7.3f}, "
        f"{metric} = {m.valid_metric:.4f}, time = {shown}"
    )
    if m.is_best:
        line += " best!"
    if rate_drop:
        line += ", rate drop"
    return line
