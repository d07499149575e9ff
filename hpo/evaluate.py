"""Held-out scores of trained trials: mean and per-target AUROC/AUPRC of a trial's best
checkpoint on one split of the data (the test split unless asked otherwise).

The test split never takes part in selection: `basset-hpo run` scores the best trial and the
reference trials once the study's trials are done; `basset-hpo evaluate` scores the top K on
demand. The numbers are those `basset-test` prints for the exported model (same predictions,
same metrics; `basset-test -rc` for a trial that trained with -rc, as it validated on both
strands).

Scores are stored as user attributes of the trial: `<split>_auroc`, `<split>_auprc` (means over
targets with both classes) and `<split>_target_auroc`, `<split>_target_auprc` (lists, null for a
single-class target). Optuna refuses to touch a finished trial (UpdateFinishedTrialError), and
a trial is scored after it finished, so they are written straight into Optuna's
`trial_user_attributes` table with Optuna's JSON encoding; status, export, report and the
dashboard read them like any other user attribute.

The scoring itself is basset's (`basset.score_checkpoint`): what every driver of the trainer
uses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
import torch
from optuna.trial import FrozenTrial, TrialState

from basset import BassetData, BassetError, Scores, score_checkpoint, split_of
from hpo import progress

# Optuna's tables (schema stable since Optuna 1.x), just the columns written here.
_TRIALS = sa.table("trials", sa.column("trial_id"), sa.column("study_id"), sa.column("number"))
_USER_ATTRS = sa.table(
    "trial_user_attributes", sa.column("trial_id"), sa.column("key"), sa.column("value_json")
)


class EvaluationError(BassetError):
    """Scores that cannot be computed as asked (no trial, no checkpoint, other data)."""


def user_attrs(scores: Scores) -> dict[str, Any]:
    """The trial user attributes `scores` are stored as (JSON: NaN becomes null)."""
    def plain(values: list[float]) -> list[float | None]:
        return [v if math.isfinite(v) else None for v in values]

    split = scores.split
    return {
        f"{split}_auroc": _finite_or_none(scores.auroc),
        f"{split}_auprc": _finite_or_none(scores.auprc),
        f"{split}_target_auroc": plain(scores.target_auroc),
        f"{split}_target_auprc": plain(scores.target_auprc),
    }


def stored_scores(trial: FrozenTrial, split: str = "test") -> Scores | None:
    """The scores stored on `trial` for `split`, or None if it was never scored."""
    attrs = trial.user_attrs
    if f"{split}_target_auroc" not in attrs:
        return None

    def floats(values: list[float | None]) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]

    return Scores(split, floats(attrs[f"{split}_target_auroc"]),
                  floats(attrs[f"{split}_target_auprc"]))


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def top_trials(trials: Sequence[FrozenTrial], k: int) -> list[FrozenTrial]:
    """The k best COMPLETE trials trained in the study, best first (ties: the earlier first)."""
    if k <= 0:
        raise EvaluationError(f"--top must be > 0, got {k}")
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                and not progress.copied(t)]
    if not complete:
        raise EvaluationError("the study has no completed trial yet")
    return sorted(complete, key=lambda t: (-(t.value or 0.0), t.number))[:k]


def reference_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """The enqueued reference trials that trained (COMPLETE or PRUNED with a best checkpoint)."""
    return [
        t for t in trials
        if t.user_attrs.get("reference") and t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        and t.user_attrs.get("best_checkpoint")
    ]


def checkpoint_of(trial: FrozenTrial) -> Path:
    """The trial's best checkpoint; EvaluationError if it saved none or the file is gone."""
    path = trial.user_attrs.get("best_checkpoint")
    if not path:
        raise EvaluationError(f"trial {trial.number} saved no best checkpoint")
    if not Path(path).is_file():
        raise EvaluationError(f"trial {trial.number}: its checkpoint {path} is missing")
    return Path(path)


def devices() -> list[str]:
    """Every GPU, else the CPU."""
    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def score_trials(trials: Sequence[FrozenTrial], data: BassetData, *, split: str = "test",
                 on: Sequence[str] | None = None) -> dict[int, Scores]:
    """Scores of each trial's best checkpoint, trial number -> Scores, the trials spread over
    the devices `on` (default: every GPU, else the CPU); a trial that trained with -rc (user
    attr `rc`) is scored on both strands, as it was validated. Every checkpoint is checked
    first."""
    paths = {t.number: checkpoint_of(t) for t in trials}
    rc = {t.number: bool(t.user_attrs.get("rc", False)) for t in trials}
    split_of(data, split)
    on = list(on or devices())

    def one(item: tuple[int, tuple[int, Path]]) -> tuple[int, Scores]:
        index, (number, path) = item
        return number, score_checkpoint(path, data, split=split, device=on[index % len(on)],
                                        rc=rc[number])

    with ThreadPoolExecutor(len(on)) as pool:  # predictions release the GIL
        return dict(pool.map(one, enumerate(paths.items())))


def store_scores(engine: sa.Engine, study_id: int, number: int, scores: Scores) -> None:
    """Write the scores as user attributes of (finished) trial `number`, replacing old ones."""
    attrs = user_attrs(scores)
    with engine.begin() as conn:
        trial_id = conn.execute(
            sa.select(_TRIALS.c.trial_id).where(
                (_TRIALS.c.study_id == study_id) & (_TRIALS.c.number == number)
            )
        ).scalar_one()
        conn.execute(_USER_ATTRS.delete().where(
            (_USER_ATTRS.c.trial_id == trial_id) & _USER_ATTRS.c.key.in_(list(attrs))
        ))
        conn.execute(_USER_ATTRS.insert(), [
            {"trial_id": trial_id, "key": key, "value_json": json.dumps(value)}
            for key, value in attrs.items()
        ])


def evaluate_study(storage: optuna.storages.RDBStorage, study_name: str, data: BassetData, *,
                   top: int = 1, split: str = "test", only_new: bool = False,
                   on: Sequence[str] | None = None) -> list[tuple[FrozenTrial, Scores]]:
    """Score the top `top` trials and the reference trials on `split` and store the scores.

    only_new: skip trials already scored on that split (the end of `run`: computed once).
    Returns (trial as it was read, its scores), best first, then the references.
    """
    study_id = storage.get_study_id_from_name(study_name)
    trials = storage.get_all_trials(study_id, deepcopy=False)
    chosen = top_trials(trials, top)
    chosen += [t for t in reference_trials(trials) if t.number not in {c.number for c in chosen}]
    if only_new:
        chosen = [t for t in chosen if stored_scores(t, split) is None]
    scores = score_trials(chosen, data, split=split, on=on)
    for number, result in scores.items():
        store_scores(storage.engine, study_id, number, result)
    return [(t, scores[t.number]) for t in chosen]



def valid_value(trial: FrozenTrial) -> float:
    """The trial's best mean validation AUROC (a pruned trial's: its best reported epoch)."""
    if trial.value is not None:
        return trial.value
    return max(trial.intermediate_values.values(), default=math.nan)


def score_lines(best: FrozenTrial | None, references: Sequence[FrozenTrial],
                split: str = "test") -> list[str]:
    """One line per scored trial, the best first: its validation value beside its held-out
    scores (what status and the end of run print)."""
    lines = []
    for role, trial in [("best", best), *(("reference", r) for r in references)]:
        if trial is None or (scores := stored_scores(trial, split)) is None:
            continue
        label = f" {trial.user_attrs['reference']}" if role == "reference" else ""
        lines.append(
            f"{role}{label} (trial {trial.number}): valid {valid_value(trial):.4f}, {split} AUROC "
            f"{scores.auroc:.4f}, AUPRC {scores.auprc:.4f}"
        )
    return lines
