"""`basset-hpo export`: a trial's params table (Basset's -job format, or JSON) and its best model.

Everything is checked before anything is written, and every file is written to a temp file and
renamed, so a failed export leaves no half-written output.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from basset import (
    SPLITS,
    JobParams,
    ParamsError,
    Scores,
    atomic_path,
    check_output_file,
    parse_params,
    read_checkpoint,
    write_params,
    write_text_atomic,
)
from hpo import confirm, progress
from hpo.errors import ResultsError
from hpo.evaluate import load_scores


@dataclass
class Export:
    """What `export` will write, all checked."""

    study_name: str
    trial: FrozenTrial
    params: JobParams
    checkpoint: Path | None = None
    target_labels: list[str] | None = None  # the study's, for per-target scores
    confirmed: confirm.ConfigSummary | None = None  # export --confirmed
    scores: dict[str, Scores] = field(default_factory=dict)  # split -> the trial's (evaluate)


def select_trial(storage: optuna.storages.BaseStorage, study_name: str,
                 number: int | None = None) -> FrozenTrial:
    """The best COMPLETE trial, or trial `number` (which must exist and be COMPLETE)."""
    if number is None:
        best = progress.snapshot(storage, study_name).best
        if best is None:
            raise ResultsError(f"study {study_name!r} has no completed trial yet")
        return best
    trials = storage.get_all_trials(storage.get_study_id_from_name(study_name), deepcopy=False)
    found = [t for t in trials if t.number == number]
    if not found:
        span = f"trials 0..{len(trials) - 1}" if trials else "no trials"
        raise ResultsError(f"study {study_name!r} has no trial {number} ({span})")
    if found[0].state != TrialState.COMPLETE:
        state = found[0].state.name
        raise ResultsError(f"trial {number} of {study_name!r} is {state}, not COMPLETE")
    return found[0]


def trial_params(trial: FrozenTrial, study_name: str) -> JobParams:
    """The JobParams a trial trained (its `params_table` user attr)."""
    table = trial.user_attrs.get("params_table")
    if not isinstance(table, str):
        raise ResultsError(f"trial {trial.number} of {study_name!r} stored no params table")
    try:
        return parse_params(table, f"trial {trial.number} params_table")
    except ParamsError as err:
        raise ResultsError(str(err)) from None


def prepare(storage: RDBStorage, study_name: str, *, number: int | None = None,
            with_model: bool = False, confirmed: bool = False) -> Export:
    """Pick the trial and check that everything asked for can be written. `confirmed`: the
    configuration with the best confirmed mean validation AUROC (hpo.confirm), with the model
    of its best seed."""
    summary = None
    if confirmed:
        summary = confirm.best_confirmed(confirm.load_summaries(storage, study_name))
        if summary is None:
            raise ResultsError(f"study {study_name!r} has no completed confirmation "
                               f"(run basset-hpo confirm --study {study_name} first)")
        number = summary.source_trial
    trial = select_trial(storage, study_name, number)
    labels = storage.get_study_user_attrs(storage.get_study_id_from_name(study_name)).get(
        "target_labels")
    export = Export(study_name, trial, trial_params(trial, study_name), target_labels=labels,
                    confirmed=summary)
    for split in SPLITS:
        scores = load_scores(storage, study_name, split, [trial])
        if trial.number in scores:
            export.scores[split] = scores[trial.number]
    if with_model:
        owner, where = trial, study_name
        if summary is not None:
            where = confirm.confirm_name(study_name)
            best_seed = summary.seed_trials[summary.valid.index(max(summary.valid))]
            owner = select_trial(storage, where, best_seed)
        path = owner.user_attrs.get("best_checkpoint")
        if not path:
            raise ResultsError(f"trial {owner.number} of {where!r} saved no best checkpoint")
        read_checkpoint(path)  # a missing or damaged file is a DataError now, before any write
        export.checkpoint = Path(path)
    return export


def as_json(export: Export) -> str:
    """Study, trial, value, params, rc (trained with -rc), and the held-out scores the trial has
    (hpo.evaluate) as
    `"test": {"auroc", "auprc", "targets": {label: {"auroc", "auprc"}}}`."""
    document = {
        "study": export.study_name,
        "trial": export.trial.number,
        "value": export.trial.value,
        "params": export.params.to_dict(),
        "rc": bool(export.trial.user_attrs.get("rc", False)),  # basset-train -rc
    }
    for split, scores in export.scores.items():
        count = len(scores.target_auroc)
        labels = export.target_labels
        if not labels or len(labels) != count:
            labels = [str(i) for i in range(count)]
        document[split] = {
            "auroc": _plain(scores.auroc),
            "auprc": _plain(scores.auprc),
            "targets": {
                label: {"auroc": _plain(auroc), "auprc": _plain(auprc)}
                for label, auroc, auprc in zip(labels, scores.target_auroc, scores.target_auprc,
                                               strict=True)
            },
        }
    if export.confirmed is not None:
        document["confirmed"] = export.confirmed.as_dict()
    return json.dumps(document, indent=2) + "\n"


def _plain(value: float) -> float | None:
    """JSON's null for a NaN score (a target with one class)."""
    return value if math.isfinite(value) else None


def write(export: Export, out: Path, *, json_format: bool = False,
          model: Path | None = None) -> None:
    """Write the params (table or JSON) to `out`, and the checkpoint copy to `model`."""
    for path in (out, model):
        if path is not None:
            check_output_file(path)
    if model is not None:
        assert export.checkpoint is not None, "prepare(with_model=True) checks the checkpoint"
        with atomic_path(model) as tmp:
            shutil.copyfile(export.checkpoint, tmp)
    if json_format:
        write_text_atomic(out, as_json(export))
    else:
        write_params(export.params, out)
