"""`basset-hpo run` loads the data once for all its workers (basset.data.shared)."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import basset.data.shared as shared
from basset.data.shared import shared_data
from hpo import workers
from hpo.config import load_study
from hpo.study import prepare_study
from hpo.supervisor import run_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import recording_train, study_toml


def test_workers_given_the_shared_copy_never_open_the_hdf5(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(workers, "load_data", lambda *a, **k: pytest.fail("a worker loaded"))
    config = load_study(str(study_toml(tmp_path)))
    url = "sqlite:///studies/tiny.db"
    prepare_study(config, url)
    with shared_data(tiny_h5, "tiny") as folder:
        plan = RunPlan(config=config, url=url, n_trials=4, devices=["cpu"] * 2, threads=1,
                       train_fn=recording_train, shared=folder)
        with ThreadPoolExecutor(2) as pool:  # two workers (threads here) at once
            assert sum(pool.map(lambda rank: run_trials(plan, rank), range(2))) == 4
        trials = optuna.load_study(study_name="tiny", storage=url).trials
        records = [json.loads(Path(f"{t.user_attrs['save_prefix']}_data.json").read_text())
                   for t in trials]
        assert {tuple(r["files"]) for r in records} == {
            (str(folder / "train_seqs.uint8.npy"), str(folder / "train_targets.uint8.npy"))}
        assert not any(r["writeable"] for r in records)


@pytest.mark.slow  # spawned workers: two interpreters importing torch
def test_the_workers_of_a_run_share_one_load(tmp_path: Path, tiny_h5: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(shared, "SHM", tmp_path / "shm")
    monkeypatch.setattr(shared.tempfile, "gettempdir", lambda: str(tmp_path))
    loads: list[Path] = []
    read_into = shared.read_into
    monkeypatch.setattr(shared, "read_into", lambda path, store: loads.append(path)
                        or read_into(path, store))
    config = load_study(str(study_toml(tmp_path)))
    plan = RunPlan(config=config, url="sqlite:///studies/tiny.db", n_trials=4,
                   devices=["cpu", "cpu"], threads=1, quiet=True, train_fn=recording_train)
    run_study(plan)
    trials = optuna.load_study(study_name="tiny", storage=plan.url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    records = [json.loads(Path(f"{t.user_attrs['save_prefix']}_data.json").read_text())
               for t in trials]
    assert len(loads) == 1  # the HDF5 was read once, by the run
    assert os.getpid() not in {r["pid"] for r in records}  # ... and workers trained on it
    assert {tuple(r["files"]) for r in records} == {tuple(records[0]["files"])}
    assert Path(records[0]["files"][0]).parent.name == f"basset-data-tiny-{os.getpid()}"
    assert not any(r["writeable"] for r in records)
    assert {r["targets_dtype"] for r in records} == {"uint8"}
    assert not Path(records[0]["files"][0]).exists()  # removed when the run ended
    with h5py.File(tiny_h5) as h5:
        assert h5["train_out"].dtype == np.float32  # the file was float; memory holds bytes
