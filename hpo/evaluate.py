"""Held-out scores of trained trials: mean and per-target AUROC/AUPRC of a trial's best
checkpoint on one split of the data (the test split unless asked otherwise).

The test split never takes part in selection: `basset-hpo run` scores the best trial and the
reference trials as its workers end (hpo.supervisor.WrapUp: from the first worker's end, then
a trial that became the best since); `basset-hpo evaluate` scores the top K on demand. The
numbers are those `basset-test` prints for the exported model (same predictions, same metrics;
`basset-test -rc` for a trial that trained with -rc, as it validated on both strands).

Scores are stored in the service's own table `basset_scores` (hpo.service_tables), one row
per trial and split: a trial is scored after it finished, and Optuna neither changes finished
trials nor keeps its tables' layout between releases. status, export --json, report and confirm
read them from there (load_scores). Releases before that table stored them as user attributes
of the trial (`<split>_auroc`, `<split>_auprc`, `<split>_target_auroc`, `<split>_target_auprc`);
load_scores still reads those, for a trial the table has no row of.

The scoring itself is basset's (`basset.score_checkpoint`): what every driver of the trainer
uses.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from basset import BassetData, BassetError, Scores, load_split, score_checkpoint, split_of
from hpo import progress, service_tables


class EvaluationError(BassetError):
    """Scores that cannot be computed as asked (no trial, no checkpoint, other data)."""


def load_scores(storage: RDBStorage, study_name: str, split: str = "test",
                trials: Sequence[FrozenTrial] | None = None) -> dict[int, Scores]:
    """The stored scores of the study's trials on `split`, trial number -> Scores: the table's,
    else the user attributes a release before the table stored (`trials`: the study's trials,
    if the caller has read them)."""
    found = service_tables.read_scores(storage.engine, study_name, split)
    if trials is None:
        trials = storage.get_all_trials(storage.get_study_id_from_name(study_name),
                                        deepcopy=False)
    for trial in trials:
        if trial.number not in found and f"{split}_target_auroc" in trial.user_attrs:
            attrs = trial.user_attrs
            found[trial.number] = Scores(
                split, service_tables.floats(attrs[f"{split}_target_auroc"]),
                service_tables.floats(attrs[f"{split}_target_auprc"]))
    return found


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
        if progress.is_reference(t) and t.user_attrs.get("best_checkpoint")
        and t.state in (TrialState.COMPLETE, TrialState.PRUNED)
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


def evaluate_study(storage: RDBStorage, study_name: str, data: BassetData, *,
                   top: int = 1, split: str = "test", only_new: bool = False,
                   on: Sequence[str] | None = None) -> list[tuple[FrozenTrial, Scores]]:
    """Score the top `top` trials and the reference trials on `split` and store the scores.

    only_new: skip trials already scored on that split (the end of `run`: computed once).
    Returns (trial as it was read, its scores), best first, then the references.
    """
    trials = storage.get_all_trials(storage.get_study_id_from_name(study_name), deepcopy=False)
    chosen = top_trials(trials, top)
    chosen += [t for t in reference_trials(trials) if t.number not in {c.number for c in chosen}]
    if only_new:
        done = load_scores(storage, study_name, split, trials)
        chosen = [t for t in chosen if t.number not in done]
    scores = score_trials(chosen, data, split=split, on=on)
    store_scores(storage, study_name, scores)
    return [(t, scores[t.number]) for t in chosen]


class EndOfRunScores:
    """`run`'s wrap-up (hpo.supervisor.WrapUp): test scores of the best and the reference
    trials, once each. The first worker to end frees a device for them while the others end
    their last epochs; the last call scores what is new since (a last trial that became the
    best) and says why scores are missing, if they are."""

    def __init__(self, data: Path, study_name: str) -> None:
        self.path, self.study_name = data, study_name
        self.storage: RDBStorage | None = None  # the run's, once called
        self.data: BassetData | None = None  # the test split, read at the first call

    def __call__(self, storage: RDBStorage, device: str, last: bool) -> None:
        self.storage = storage
        try:
            if self.data is None:
                self.data = load_split(self.path, "test")
            evaluate_study(storage, self.study_name, self.data, only_new=True, on=[device])
        except BassetError as err:  # the study itself is fine: say why its scores are missing
            if last:
                print(f"no test scores: {err}", file=sys.stderr)


def store_scores(storage: RDBStorage, study_name: str, scores: dict[int, Scores]) -> None:
    """Record trial number -> scores in the service's table (made here in a database older
    than it), replacing each trial's old scores on that split."""
    if scores:
        service_tables.create_tables(storage.engine)
    for number, result in scores.items():
        service_tables.write_scores(storage.engine, study_name, number, result)


def valid_value(trial: FrozenTrial) -> float:
    """The trial's best mean validation AUROC (a pruned trial's: its best reported epoch)."""
    if trial.value is not None:
        return trial.value
    return max(trial.intermediate_values.values(), default=math.nan)


def score_lines(best: FrozenTrial | None, references: Sequence[FrozenTrial],
                scores: dict[int, Scores], split: str = "test") -> list[str]:
    """One line per scored trial (`scores`: load_scores'), the best first: its validation value
    beside its held-out scores (what status and the end of run print)."""
    lines = []
    for role, trial in [("best", best), *(("reference", r) for r in references)]:
        if trial is None or trial.number not in scores:
            continue
        result = scores[trial.number]
        label = f" {trial.user_attrs[progress.REFERENCE]}" if role == "reference" else ""
        lines.append(
            f"{role}{label} (trial {trial.number}): valid {valid_value(trial):.4f}, {split} "
            f"AUROC {result.auroc:.4f}, AUPRC {result.auprc:.4f}"
        )
    return lines
