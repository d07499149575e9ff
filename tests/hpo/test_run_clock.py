"""The run's own clock, outside its trials' epochs: how its workers start (forked on the CPU,
their imports done) and when its end-of-run work (the test scores) runs: as soon as the first
worker has ended while another still trains, then only what is new."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.config import load_study
from hpo.evaluate import EndOfRunScores
from hpo.study import prepare_study
from hpo.supervisor import run_study, start_method
from hpo.workers import RunPlan
from hpo_testutil import staggered_train, study_toml


def test_cpu_workers_are_forked_and_cuda_workers_spawned() -> None:
    assert start_method(["cpu", "cpu"]) == ("fork" if sys.platform == "linux" else "spawn")
    assert start_method(["cpu", "cuda:0"]) == "spawn"
    assert start_method(["cuda:0", "cuda:1"]) == "spawn"


def test_a_second_thread_in_the_run_process_means_spawn() -> None:
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert start_method(["cpu"]) == "spawn"
    finally:
        stop.set()
        other.join()
    assert start_method(["cpu"]) == ("fork" if sys.platform == "linux" else "spawn")


def test_the_wrap_up_starts_while_the_last_trial_still_trains(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers, two trials: trial 0 ends at once, trial 1 trains 3 slow epochs. The worker
    # that ends first frees its device for the wrap-up while trial 1 is RUNNING; the last call
    # comes when both have ended, with trial 1 complete (the new best it must score).
    monkeypatch.chdir(tmp_path)
    config = load_study(str(study_toml(tmp_path)))
    plan = RunPlan(config=config, url="sqlite:///studies/tiny.db", n_trials=2,
                   devices=["cpu", "cpu"], threads=1, quiet=True, train_fn=staggered_train)
    calls = []

    def wrap_up(storage: optuna.storages.RDBStorage, device: str, last: bool) -> None:
        trials = storage.get_all_trials(storage.get_study_id_from_name("tiny"), deepcopy=False)
        calls.append((last, device, [t.number for t in trials if t.state == TrialState.RUNNING],
                      [t.number for t in trials if t.state == TrialState.COMPLETE]))

    snap = run_study(plan, wrap_up)
    assert calls == [(False, "cpu", [1], [0]), (True, "cpu", [], [0, 1])]
    assert snap.best is not None and snap.best.number == 1 and snap.best.value == 0.8


def test_the_test_scores_say_why_they_are_missing_at_the_last_call_only(
    tmp_path: Path, tiny_h5: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_study(str(study_toml(tmp_path, data=tmp_path / "gone.h5")))
    url = f"sqlite:///{tmp_path / 'tiny.db'}"
    storage = prepare_study(config, url)
    scores = EndOfRunScores(config.data, config.name)
    scores(storage, "cpu", False)  # a worker ended early: the others may still fix it
    assert capsys.readouterr().err == ""
    scores(storage, "cpu", True)
    err = capsys.readouterr().err
    assert err.startswith("no test scores: ") and "gone.h5" in err and err.count("\n") == 1
    assert scores.storage is storage
