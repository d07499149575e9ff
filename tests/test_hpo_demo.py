"""Acceptance: the demo study, as a user runs it (slow: minutes on two CPU cores)."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.cli import main


@pytest.mark.slow
def test_demo_study_runs_20_trials_in_ten_minutes_then_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BASSET_HPO_STORAGE", raising=False)
    start = time.monotonic()
    assert main(["run", "--study", "demo", "--n-trials", "20", "-q"]) == 0
    seconds = time.monotonic() - start
    assert seconds <= 600, f"the demo took {seconds:.0f} s"
    assert (tmp_path / "studies" / "demo_data.h5").exists()  # generated on first use
    storage = "sqlite:///studies/demo.db"
    trials = optuna.load_study(study_name="demo", storage=storage).trials
    assert len(trials) == 20
    assert trials[0].user_attrs["reference"] == "paper-scaled"
    assert trials[0].params["conv_filters_0"] == 64
    states = [t.state for t in trials]
    assert TrialState.FAIL not in states and TrialState.RUNNING not in states
    assert states.count(TrialState.PRUNED) >= 1
    values = [t.value for t in trials if t.state == TrialState.COMPLETE]
    assert max(values) - min(values) >= 0.05, values

    assert main(["run", "--study", "demo", "--n-trials", "25", "-q"]) == 0
    assert len(optuna.load_study(study_name="demo", storage=storage).trials) == 25
