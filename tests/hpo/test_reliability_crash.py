"""Crash consistency (issue 25 item 5): a SIGKILL at the worst moment, reproduced exactly in a
subprocess (a step monkeypatched to kill its own process), then the repair shown.

- killed while the references are being enqueued: the next run enqueues what is missing, once;
- killed after a trial became RUNNING but before its owner (host, pid) was written, heartbeats
  off: the next run retries it (it would otherwise stay RUNNING forever and the study would
  never reach its total)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hpo import progress
from hpo.config import load_study
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import quick_train, tiny_data, write_h5
from reliability_testutil import study_file

TESTS = Path(__file__).resolve().parents[1]
REFS = [f"{{label = \"r{i}\", conv_filters = [8], conv_filter_sizes = [5], pool_width = [2], "
        f"hidden_units = [16], batch_size = 32, learning_rate = {0.004 * (i + 1)}}}"
        for i in range(4)]

KILL_ON_THIRD_ENQUEUE = """
import os, signal, sys
import optuna
from hpo.config import load_study
from hpo.study import prepare_study
real, calls = optuna.Study.enqueue_trial, []
def enqueue(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, *args, **kwargs)
optuna.Study.enqueue_trial = enqueue
prepare_study(load_study(sys.argv[1]), sys.argv[2])
"""

KILL_BEFORE_THE_OWNER_IS_WRITTEN = """
import os, signal, sys, types
import hpo.objective
from hpo.config import load_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import quick_train
# The objective's first act names the trial's host: die there, the trial already RUNNING.
hpo.objective.socket = types.SimpleNamespace(
    gethostname=lambda: os.kill(os.getpid(), signal.SIGKILL))
config = load_study(sys.argv[1])
run_trials(RunPlan(config=config, url=sys.argv[2], n_trials=2, devices=["cpu"], threads=1,
                   quiet=True, train_fn=quick_train), 0)
"""


def _killed(script: str, toml: Path, url: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get(
        "PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script, str(toml), url], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr


def _study(tmp_path: Path, name: str, enqueue: str = "") -> Path:
    data = write_h5(tmp_path / "tiny.h5", tiny_data())
    path = study_file(tmp_path, name, data, max_epochs=2)
    if enqueue:
        path.write_text(f"enqueue = [{enqueue}]\n" + path.read_text())
    return path


def test_a_kill_while_enqueueing_the_references_is_repaired_by_the_next_run(
    tmp_path: Path,
) -> None:
    toml = _study(tmp_path, "refs", ", ".join(REFS))
    url = f"sqlite:///{tmp_path}/refs.db"
    _killed(KILL_ON_THIRD_ENQUEUE, toml, url, tmp_path)
    study = optuna.load_study(study_name="refs", storage=url)
    assert [t.user_attrs["reference"] for t in study.trials] == ["r0", "r1"]  # the failure
    config = load_study(str(toml))
    for _ in range(2):  # the repair, and idempotent
        prepare_study(config, url)
        trials = study.get_trials()
        assert [t.user_attrs["reference"] for t in trials] == ["r0", "r1", "r2", "r3"]
        assert {t.state for t in trials} == {TrialState.WAITING}
    run_trials(RunPlan(config=config, url=url, n_trials=5, devices=["cpu"], threads=1,
                       quiet=True, train_fn=quick_train), 0)
    prepare_study(config, url)  # a finished reference is not enqueued again
    trials = study.get_trials()
    assert progress.counted(trials) == 5 and len(trials) == 5
    assert sorted(t.user_attrs.get("reference", "-") for t in trials) == [
        "-", "r0", "r1", "r2", "r3"]


def test_a_trial_whose_owner_was_never_written_is_retried_not_running_forever(
    tmp_path: Path,
) -> None:
    toml = _study(tmp_path, "owner", REFS[0])  # heartbeats off
    url = f"sqlite:///{tmp_path}/owner.db"
    config = load_study(str(toml))
    assert config.heartbeat.interval == 0
    prepare_study(config, url)
    _killed(KILL_BEFORE_THE_OWNER_IS_WRITTEN, toml, url, tmp_path)
    study = optuna.load_study(study_name="owner", storage=url)
    [trial] = study.trials  # the failure: RUNNING, nobody's, the reference never trains
    assert trial.state == TrialState.RUNNING and "pid" not in trial.user_attrs
    assert trial.user_attrs["reference"] == "r0"
    ran = run_trials(RunPlan(config=config, url=url, n_trials=2, devices=["cpu"], threads=1,
                             quiet=True, train_fn=quick_train), 0)
    trials = study.get_trials()
    assert ran == 2 and progress.counted(trials) == 2
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE,
                                         TrialState.COMPLETE]
    assert "before recording itself" in trials[0].user_attrs["fail_reason"]
    assert trials[1].user_attrs["reference"] == "r0"  # the reference trained after all
