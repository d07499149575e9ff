"""What identifies a study's data, stored when the study is created: target labels, sequence
length, split sizes and a content fingerprint. A later `run --data` (or `confirm`/`evaluate
--data`) on other data is refused in one line; a copy of the same data at another path is fine.

The fingerprint is cheap for files of any size: a hash over every dataset's name, shape and
dtype and a few rows sampled evenly from each (never a whole dataset).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import optuna

from hpo.errors import ConfigError

ATTR = "data_identity"
SPLITS = ("train", "valid", "test")
SAMPLED_ROWS = 8


def data_identity(path: Path) -> dict[str, Any]:
    """Labels, sequence length, split sizes and fingerprint of a Basset HDF5 file (checked by
    basset.check_data before: the datasets exist)."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as h5:
        names = [f"{s}_{part}" for s in SPLITS for part in ("in", "out") if f"{s}_{part}" in h5]
        for name in [*names, "target_labels"]:
            if isinstance(h5.get(name), h5py.Dataset):
                _digest_dataset(digest, name, h5[name])
        labels = ([v.decode() if isinstance(v, bytes) else str(v) for v in h5["target_labels"][:]]
                  if "target_labels" in h5 else None)
        return {
            "labels": labels,
            "seq_len": int(h5["train_in"].shape[-1]),
            "splits": {s: int(h5[f"{s}_in"].shape[0]) for s in SPLITS if f"{s}_in" in h5},
            "fingerprint": digest.hexdigest(),
        }


def _digest_dataset(digest: Any, name: str, dataset: h5py.Dataset) -> None:
    digest.update(f"{name}{dataset.shape}{dataset.dtype.str}".encode())
    rows = dataset.shape[0] if dataset.shape else 0
    for row in sorted(set(np.linspace(0, rows - 1, SAMPLED_ROWS, dtype=int).tolist()) if rows
                      else []):
        digest.update(np.ascontiguousarray(dataset[row]).tobytes())


def _difference(stored: dict[str, Any], found: dict[str, Any]) -> str | None:
    """What differs, in words (None: the same data)."""
    if stored.get("labels") != found["labels"]:
        return "other target labels"
    if stored.get("seq_len") != found["seq_len"]:
        return f"{found['seq_len']} bp sequences, the study's have {stored.get('seq_len')} bp"
    if stored.get("splits") != found["splits"]:
        sizes = ", ".join(f"{k} {v}" for k, v in found["splits"].items())
        theirs = ", ".join(f"{k} {v}" for k, v in (stored.get("splits") or {}).items())
        return f"splits of {sizes}, the study's have {theirs}"
    if stored.get("fingerprint") != found["fingerprint"]:
        return "other sequences or targets (same labels and sizes)"
    return None


def check_data(storage: optuna.storages.BaseStorage, study_name: str, path: Path,
               found: dict[str, Any] | None = None) -> dict[str, Any]:
    """ConfigError when `path` is not the data the study was created with (nothing is written);
    the data's identity otherwise. A study that stored no identity (made before this check)
    is compared by its target labels only."""
    found = found or data_identity(path)
    attrs = storage.get_study_user_attrs(storage.get_study_id_from_name(study_name))
    stored = attrs.get(ATTR)
    if stored is None and "target_labels" in attrs:
        stored = {"labels": attrs["target_labels"], "seq_len": found["seq_len"],
                  "splits": found["splits"], "fingerprint": found["fingerprint"]}
    if stored is not None:
        why = _difference(stored, found)
        if why is not None:
            raise ConfigError(
                f"{path} is not the data study {study_name} was created with ({why}); give "
                "other data a new study name (a copy of the same data at another path is fine)"
            )
    return found


def record(study: optuna.Study, identity: dict[str, Any]) -> None:
    """Store the identity on a study that has none yet."""
    if ATTR not in study.user_attrs:
        study.set_user_attr(ATTR, identity)
