"""No command writes over what it reads: the study's database (and its -wal, -shm, -journal and
lock files), its study file, its data, its trials' checkpoints, or another of its own outputs.

Paths are compared as the file system sees them: symlinks and relative spellings resolved, and
hard links (another name of the same file) caught by comparing the files themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import optuna

from basset import check_distinct
from hpo.storage import sqlite_path

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal", ".lock")
CHECKPOINT_ATTRS = ("best_checkpoint", "checkpoint")
PREFIX_FILES = ("_check.pt", "_best.pt")


def refuse_overwrite(outputs: Iterable[tuple[str, Path | None]],
                     inputs: Iterable[tuple[str, Path]]) -> None:
    """One line (before any work) when an output is one of the inputs or another output.
    `outputs`: (flag, path or None); `inputs`: (what it is, path). basset's check_distinct
    compares them (resolved paths and the files themselves)."""
    given = [(flag, path) for flag, path in outputs if path is not None]
    inputs = list(inputs)
    for i, output in enumerate(given):
        later = [(f"the {flag} output", path) for flag, path in given[i + 1:]]
        check_distinct([*inputs, *later], [output])


def database_files(url: str) -> list[tuple[str, Path]]:
    """An SQLite study database and the files SQLite and the study lock keep beside it."""
    path = sqlite_path(url)
    if path is None:
        return []
    return [("the study's database", path)] + [
        (f"the study database's {end.lstrip('.-')} file", path.with_name(path.name + end))
        for end in SQLITE_SIDE_FILES
    ]


def study_inputs(storage: optuna.storages.BaseStorage, url: str, names: Iterable[str],
                 study_file: Path | None = None) -> list[tuple[str, Path]]:
    """Everything a study command reads: database files, the study file, the data and every
    checkpoint of the studies `names` (those that exist in the storage)."""
    inputs = database_files(url)
    if study_file is not None:
        inputs.append(("the study file", study_file))
    for name in names:
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            continue
        data = storage.get_study_user_attrs(study_id).get("data_path")
        if isinstance(data, str):
            inputs.append((f"the data of study {name}", Path(data)))
        for trial in storage.get_all_trials(study_id, deepcopy=False):
            inputs += _checkpoints(name, trial)
    return inputs


def _checkpoints(study_name: str, trial: optuna.trial.FrozenTrial) -> list[tuple[str, Path]]:
    what = f"a checkpoint of trial {trial.number} of {study_name}"
    paths = [trial.user_attrs.get(key) for key in CHECKPOINT_ATTRS]
    prefix = trial.user_attrs.get("save_prefix")
    if isinstance(prefix, str):
        paths += [prefix + end for end in PREFIX_FILES]
    return [(what, Path(p)) for p in dict.fromkeys(paths) if isinstance(p, str) and p]
