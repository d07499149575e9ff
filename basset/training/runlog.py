"""The run log: PREFIX_metrics.tsv (one row per evaluation: epoch, or eval_every interval),
Basset's per-epoch line, and the run's files."""

from __future__ import annotations

from pathlib import Path

from basset.fileio import output_folder, write_text_atomic
from basset.training.checkpoint import Checkpoint
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
    ("sequences", "sequences"),  # training sequences seen so far
)


def write_metrics_tsv(path: Path, history: list[EpochMetrics]) -> None:
    """Every evaluation so far (a restarted run's too), rewritten atomically after each."""
    rows = ["\t".join(column for column, _ in TSV_COLUMNS)]
    for m in history:
        rows.append("\t".join(str(getattr(m, name)) for _, name in TSV_COLUMNS))
    write_text_atomic(path, "\n".join(rows) + "\n")


def epoch_line(m: EpochMetrics, target_type: str, rate_drop: bool, sub_epoch: bool = False) -> str:
    """basset_train.lua's line: losses, the validation metric (AUC, or R2 for regression
    targets), time, and whether the epoch was a new best or dropped the learning rate. With
    eval_every (`sub_epoch`) it says "Eval #" and the training sequences seen so far."""
    shown = f"{m.seconds / 60:3.0f}m" if m.seconds >= 600 else f"{m.seconds:3.0f}s"
    metric = "AUC" if target_type == "binary" else "R2"
    line = (
        f"{'Eval' if sub_epoch else 'Epoch'} #{m.epoch:3d}   train loss = {m.train_loss:7.3f}, "
        f"valid loss = {m.valid_loss:7.3f}, {metric} = {m.valid_metric:.4f}, time = {shown}"
    )
    if sub_epoch:
        line += f", {m.sequences} seqs"
    if m.is_best:
        line += " best!"
    if rate_drop:
        line += ", rate drop"
    return line


class RunFiles:
    """PREFIX_check.pt (every evaluation), PREFIX_best.pt (on a new best), PREFIX_metrics.tsv."""

    def __init__(self, prefix: Path) -> None:
        output_folder(prefix.parent)
        self.check = Path(f"{prefix}_check.pt")
        self.best = Path(f"{prefix}_best.pt")
        self.tsv = Path(f"{prefix}_metrics.tsv")

    @classmethod
    def at(cls, prefix: Path | None) -> RunFiles | None:
        return None if prefix is None else cls(Path(prefix))

    def save(self, checkpoint: Checkpoint, is_best: bool) -> None:
        checkpoint.save(self.check)
        if is_best:
            checkpoint.save(self.best)
        write_metrics_tsv(self.tsv, checkpoint.state.history)
