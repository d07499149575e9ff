"""A study knows its data (issue 25 item 4): what identifies it is stored at creation, a copy
of the same data at another path is accepted, other data refused before anything is written."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from hpo.config import load_study
from hpo.dataid import ATTR, data_identity
from hpo.errors import ConfigError
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import quick_train, study_toml, write_h5
from synth_data import make_data


def test_a_copy_of_the_data_elsewhere_continues_the_study_other_data_is_refused(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tiny_h5
    config = load_study(str(study_toml(tmp_path, name="ident", data=data)))
    url = "sqlite:///studies/ident.db"
    storage = prepare_study(config, url)
    stored = optuna.load_study(study_name="ident", storage=storage).user_attrs[ATTR]
    assert stored["labels"] == ["t0", "t1", "t2"] and stored["seq_len"] == 60
    assert stored["splits"] == {"train": 120, "valid": 50, "test": 30}
    (tmp_path / "elsewhere").mkdir()
    copy = Path(shutil.copy(data, tmp_path / "elsewhere" / "same.h5"))
    assert data_identity(copy) == stored
    moved = replace(config, data=copy)
    prepare_study(moved, url)
    run_trials(RunPlan(config=moved, url=url, n_trials=1, devices=["cpu"], threads=1,
                       quiet=True, train_fn=quick_train), 0)
    study = optuna.load_study(study_name="ident", storage=url)
    assert study.user_attrs["data_path"] == str(copy.resolve())
    other = write_h5(tmp_path / "other.h5", make_data(n_train=120, n_valid=50, n_test=30,
                                                      seq_len=60, num_targets=3, seed=9))
    with pytest.raises(ConfigError, match="other sequences or targets"):
        prepare_study(replace(config, data=other), url)
    assert len(study.get_trials()) == 1  # nothing added by the refused run
