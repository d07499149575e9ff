"""What a user sees of a run (issue 25 items 8, 10): workers capped at the trials left (said in
one line), worker names that tell two runs on one host apart, the study's metric named for the
dashboard, and none of Optuna's own log lines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from rich.console import Console

from hpo.cli import main
from hpo.config import load_study
from hpo.study import prepare_study
from hpo.supervisor import _cap_workers
from hpo.workers import RunPlan, run_trials
from hpo_testutil import quick_train
from reliability_testutil import study_file


def test_workers_are_capped_at_the_trials_left_in_one_line(
    tmp_path: Path, tiny_h5: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = load_study(str(study_file(tmp_path, "cap", tiny_h5, max_epochs=1)))
    plan = RunPlan(config=config, url="sqlite:///x.db", n_trials=5, devices=["cpu"] * 3,
                   threads=1)
    console = Console(stderr=True)
    for left in (3, 4, 0):  # enough trials for every worker, or none to start: unchanged
        assert _cap_workers(plan, left, console) is plan
    assert capsys.readouterr().err == ""
    capped = _cap_workers(plan, 2, console)
    assert capped.devices == ["cpu", "cpu"] and capped.threads >= plan.threads
    assert capsys.readouterr().err == "2 trial(s) left of 5: starting 2 of the 3 worker(s)\n"


def test_metric_name_worker_names_and_no_optuna_info_lines(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_study(str(study_file(tmp_path, "named", tiny_h5, max_epochs=1)))
    url = "sqlite:///studies/named.db"
    prepare_study(config, url)
    run_trials(RunPlan(config=config, url=url, n_trials=1, devices=["cpu"], threads=1,
                       quiet=True, train_fn=quick_train), 0, run_pid=4242)
    study = optuna.load_study(study_name="named", storage=url)
    assert study.metric_names == ["mean validation AUROC"]  # the dashboard's label
    assert study.trials[0].user_attrs["worker"] == f"{socket.gethostname()}/4242/0"
    optuna.logging.set_verbosity(optuna.logging.INFO)
    assert main(["status", "--study", "nosuch", "--storage", url, "-q"]) == 2
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING  # never INFO, even without -q
    assert main(["status", "--study", "named", "--storage", url]) == 0
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING


@pytest.mark.slow  # real worker processes, and the console script through pipes
def test_workers_are_capped_at_the_trials_left_and_named_by_their_run(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BASSET_HPO_STORAGE", raising=False)
    data = tiny_h5
    toml = study_file(tmp_path, "cap", data, max_epochs=1)
    assert main(["run", "--study", str(toml), "--n-trials", "1", "--gpus", "none",
                 "--workers", "3"]) == 0
    err = capfd.readouterr().err
    assert "1 trial(s) left of 1: starting 1 of the 3 worker(s)" in err
    assert "1 worker(s) on cpu" in err
    assert "A new study created" not in err and "[I " not in err  # Optuna's INFO lines
    study = optuna.load_study(study_name="cap", storage="sqlite:///studies/cap.db")
    assert study.metric_names == ["mean validation AUROC"]  # the dashboard's label
    [trial] = study.trials
    assert trial.user_attrs["worker"] == f"{socket.gethostname()}/{os.getpid()}/0"
    # The total reached: another run starts no worker and says nothing of capping.
    assert main(["run", "--study", str(toml), "--n-trials", "1", "--gpus", "none",
                 "--workers", "3"]) == 0
    assert "left of" not in capfd.readouterr().err
    # A reader that went away (`| head -c 10`, here `| true`): no traceback, rc 0.
    hpo = Path(sys.executable).parent / "basset-hpo"
    for command in ("status", "evaluate"):
        done = subprocess.run(["bash", "-c", f"{hpo} {command} --study {toml} | true; "
                               "exit ${PIPESTATUS[0]}"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
