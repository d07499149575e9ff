"""Crash recovery and graceful stop: a trial interrupted by `kill -9` or by Ctrl-C resumes from
its last epoch checkpoint, no epoch is trained twice, and the study ends with the exact count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from basset.training.checkpoint import read_checkpoint, read_history
from hpo import progress, service_tables
from hpo.config import load_study
from hpo.storage import make_engine
from hpo.supervisor import WorkerFailed, run_study
from hpo.workers import RunPlan
from reliability_testutil import paced_train, running_after_epoch, study_file, wait_for

MANY = 40
HPO = [str(Path(sys.executable).parent / "basset-hpo")]


def _check_resumed(
    url: str, name: str, n_trials: int, max_epochs: int
) -> tuple[FrozenTrial, FrozenTrial]:
    """The study holds n_trials finished trials plus one replaced (FAIL) trial, whose copy
    continued from the replaced trial's last epoch; returns (replaced, copy)."""
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert progress.counted(trials) == n_trials
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    copies = [t for t in trials if "failed_trial" in t.system_attrs]
    assert len(copies) == 1, [(t.number, t.state, t.system_attrs) for t in trials]
    copy = copies[0]
    replaced = trials[copy.system_attrs["failed_trial"]]
    assert replaced.state == TrialState.FAIL and copy.state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n_trials
    assert copy.params == replaced.params
    # Epochs continue: the copy trained only the epochs after the replaced trial's last one.
    last = max(replaced.intermediate_values)
    assert 1 <= last < max_epochs
    rows = service_tables.read_epochs(make_engine(url), name)
    trained = {t.number: [r["epoch"] for r in rows if r["trial_number"] == t.number]
               for t in (replaced, copy)}
    assert trained[replaced.number] == list(range(1, last + 1))
    assert trained[copy.number] == list(range(last + 1, max_epochs + 1))
    # Earlier intermediate values kept, the curve complete, one checkpoint with every epoch.
    assert sorted(copy.intermediate_values) == list(range(1, max_epochs + 1))
    assert all(copy.intermediate_values[e] == v for e, v in replaced.intermediate_values.items())
    prefix = replaced.user_attrs["save_prefix"]
    assert copy.user_attrs["resumed_from"] == f"{prefix}_check.pt"
    assert copy.user_attrs["checkpoint"] == f"{prefix}_check.pt"
    history = read_history(f"{prefix}_check.pt")
    assert [m.epoch for m in history] == list(range(1, max_epochs + 1))
    assert copy.value == max(m.valid_metric for m in history)
    return replaced, copy


@pytest.mark.slow  # about 30 s on two cores: worker start-up, a kill, a heartbeat grace period
def test_kill_9_mid_trial_is_retried_from_its_checkpoint(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers; one is SIGKILLed after its trial's first epoch. The other worker finishes
    # its trials, stays while the dead trial is RUNNING, sees it turn stale (grace 2 s), and
    # runs the retry, which resumes at epoch 2 from the dead trial's checkpoint.
    monkeypatch.chdir(tmp_path)
    config = load_study(str(study_file(tmp_path, "crash", tmp_path / "tiny.h5", max_epochs=3,
                                       interval=1, grace=2)))
    url = "sqlite:///studies/crash.db"
    plan = RunPlan(config=config, url=url, n_trials=3, devices=["cpu", "cpu"], threads=1,
                   quiet=True, train_fn=paced_train)
    killed: list[FrozenTrial] = []

    def kill_one() -> None:
        trial = wait_for(running_after_epoch(url, "crash", 1), what="a trial after epoch 1")
        pid = trial.user_attrs["pid"]
        assert pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        killed.append(trial)

    killer = threading.Thread(target=kill_one)
    killer.start()
    with pytest.raises(WorkerFailed, match=f"exited with -{int(signal.SIGKILL)}"):
        run_study(plan)
    killer.join()
    replaced, copy = _check_resumed(url, "crash", n_trials=3, max_epochs=3)
    assert replaced.number == killed[0].number
    assert copy.system_attrs["retry_history"] == [replaced.number]


@pytest.mark.slow  # two runs of real worker processes each
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_ctrl_c_requeues_the_trial_and_the_next_run_resumes_it(
    how: str, tmp_path: Path, tiny_h5: Path
) -> None:
    # The real console script. SIGINT goes to the whole process group, as a terminal's Ctrl-C
    # does (each worker gets it twice: directly and forwarded); SIGTERM to the parent only.
    # Many short epochs: the signal lands mid-trial, whatever the machine's load.
    data = tiny_h5
    study = study_file(tmp_path, "stop", data, max_epochs=MANY)
    url = f"sqlite:///{tmp_path}/stop.db"
    cmd = [*HPO, "run", "--study", str(study), "--storage", url, "--n-trials", "2", "-q",
           "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for(running_after_epoch(url, "stop", 2), what="a trial at epoch 2")
        if how == "SIGINT":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # what the signal does, then where the study stands
    assert lines[0].startswith("stopping: each running trial stops after its current evaluation")
    assert "a second Ctrl-C or SIGTERM aborts now" in lines[0]
    assert lines[1].startswith("interrupted: stop holds 0/2 trials"), err
    trials = optuna.load_study(study_name="stop", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[0].user_attrs["fail_reason"] == "interrupted"
    stopped_at = max(trials[0].intermediate_values)
    assert 2 <= stopped_at < MANY
    check = read_checkpoint(f"{trials[0].user_attrs['save_prefix']}_check.pt")  # not corrupt
    assert check.state.epoch == stopped_at

    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "stop: 2 done (2 complete, 0 pruned, 0 failed, 1 requeued), 0 running" in done.stdout
    _check_resumed(url, "stop", n_trials=2, max_epochs=MANY)
