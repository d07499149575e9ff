"""Faults a run must survive: its parent killed (no orphaned worker, the trial resumed by the
next run), a crash with heartbeats off (no trial lost, the total still exact), a full disk (one
line, nothing lost). Quick in-process versions run by default; the real console script under
SIGKILL is marked slow."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_reliability_recovery import HPO, MANY, _check_resumed

from basset import OutputError, TrainHooks, TrainOptions, TrainResult, process_alive
from basset.data.h5read import BassetData
from basset.params import JobParams
from hpo import progress
from hpo.cli import main
from hpo.config import load_study
from hpo.storage import StudyLock, make_engine, make_storage
from hpo.study import prepare_study
from hpo.workers import RunPlan, retry_orphans, run_trials
from hpo_testutil import quick_train, tiny_data, write_h5
from reliability_testutil import fill_file_system, running_after_epoch, study_file, wait_for

WATCHED = """
import os, signal, sys, time
from hpo.lifeline import end_with_parent
signal.signal(signal.SIGTERM, lambda *_: (open(sys.argv[1], "w").write("stopped"), sys.exit(0)))
end_with_parent(int(sys.argv[2]), lambda: False)
open(sys.argv[1] + ".ready", "w").close()
time.sleep(60)
"""
PARENT = """
import os, signal, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], str(os.getpid())])
print(child.pid, flush=True)
while not os.path.exists(sys.argv[2] + ".ready"):
    pass
os.kill(os.getpid(), signal.SIGKILL)
"""


def _gone_within(pid: int, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not process_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_a_worker_is_stopped_as_by_sigterm_when_its_parent_is_killed(tmp_path: Path) -> None:
    flag = tmp_path / "stopped"
    parent = subprocess.run([sys.executable, "-c", PARENT, WATCHED, str(flag)],
                            capture_output=True, text=True, timeout=60)
    assert parent.returncode == -signal.SIGKILL, parent.stderr
    child = int(parent.stdout.split()[0])
    assert _gone_within(child, 10), "the worker outlived its parent"
    assert flag.read_text() == "stopped"  # through its SIGTERM handler: the graceful stop


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def _running_trial(study: optuna.Study, **attrs: object) -> int:
    trial = study.ask()
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    trial.suggest_float("learning_rate", 3e-3, 3e-2, log=True)
    return trial.number


def test_heartbeats_off_a_dead_local_process_trial_is_retried_and_the_total_stays_exact(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tiny_h5
    config = load_study(str(study_file(tmp_path, "off", data, max_epochs=2)))
    assert config.heartbeat.interval == 0
    url = "sqlite:///studies/off.db"
    storage = prepare_study(config, url)
    study = optuna.load_study(study_name="off", storage=storage)
    host = socket.gethostname()
    dead = _running_trial(study, host=host, pid=_dead_pid())
    live = _running_trial(study, host=host, pid=os.getpid())
    elsewhere = _running_trial(study, host="another-host", pid=_dead_pid())
    engine = make_engine(url)
    with StudyLock(url, "off", engine):
        assert retry_orphans(study, storage, storage.get_study_id_from_name("off")) == [dead]
    trials = study.get_trials(deepcopy=False)
    states = {t.number: t.state for t in trials}
    assert states[dead] == TrialState.FAIL
    assert states[live] == states[elsewhere] == TrialState.RUNNING
    [copy] = [t for t in trials if t.state == TrialState.WAITING]
    assert copy.system_attrs["failed_trial"] == dead and copy.params == trials[dead].params
    assert progress.counted(trials) == 2  # the dead trial no longer counts; its copy will
    # The live and the foreign trial end; a run then finishes with the exact total.
    for number in (live, elsewhere):
        study.tell(number, 0.5)
    plan = RunPlan(config=config, url=url, n_trials=5, devices=["cpu"], threads=1, quiet=True,
                   train_fn=quick_train)
    run_trials(plan, 0)
    trials = study.get_trials(deepcopy=False)
    assert progress.counted(trials) == 5
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    engine.dispose()


def _disk_full(params: JobParams, data: BassetData, *, options: TrainOptions,
               hooks: TrainHooks, **_: object) -> TrainResult:
    raise OutputError(f"cannot write {options.save_prefix}_check.pt: No space left on device")


def test_a_full_disk_mid_trial_stops_the_worker_and_requeues_its_trial(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tiny_h5
    config = load_study(str(study_file(tmp_path, "full", data, max_epochs=2)))
    url = "sqlite:///studies/full.db"
    prepare_study(config, url)
    plan = RunPlan(config=config, url=url, n_trials=3, devices=["cpu"], threads=1, quiet=True,
                   train_fn=_disk_full)
    with pytest.raises(OutputError, match="No space left"):
        run_trials(plan, 0)
    trials = optuna.load_study(study_name="full", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]  # not lost
    assert trials[0].user_attrs["fail_reason"] == "could not write its files"
    plan.train_fn = quick_train  # space again: the next run resumes and hits the total
    run_trials(plan, 0)
    trials = optuna.load_study(study_name="full", storage=url).trials
    assert progress.counted(trials) == 3
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                            str(path)], capture_output=True).returncode != 0:
        pytest.skip("needs the right to mount a tmpfs (root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.slow
def test_disk_full_run_is_one_line_and_the_next_run_hits_the_total(tmp_path: Path,
                                                                   tiny_h5: Path) -> None:
    data = tiny_h5
    study = study_file(tmp_path, "disk", data, max_epochs=2)
    with _tmpfs(tmp_path / "disk", "4m") as disk:
        url = f"sqlite:///{disk}/disk.db"
        cmd = [*HPO, "run", "--study", str(study), "--storage", url, "--n-trials", "2", "-q",
               "--workers", "1"]
        prepare_study(load_study(str(study)), url)
        filler = fill_file_system(disk / "filler")
        failed = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert failed.returncode == 2, failed.stderr
        assert len(failed.stderr.splitlines()) == 1 and "Traceback" not in failed.stderr
        assert "full" in failed.stderr or "No space left" in failed.stderr, failed.stderr
        filler.unlink()
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        storage = make_storage(url, load_study(str(study)).heartbeat, create=False)
        trials = storage.get_all_trials(storage.get_study_id_from_name("disk"))
        assert progress.counted(trials) == 2
        assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def _start_run(tmp_path: Path, name: str) -> tuple[list[str], str, subprocess.Popen[bytes]]:
    data = write_h5(tmp_path / "tiny.h5", tiny_data())
    study = study_file(tmp_path, name, data, max_epochs=MANY)  # heartbeats off
    url = f"sqlite:///{tmp_path}/{name}.db"
    cmd = [*HPO, "run", "--study", str(study), "--storage", url, "--n-trials", "2", "-q",
           "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return cmd, url, proc


@pytest.mark.slow
def test_sigkill_of_the_run_leaves_no_worker_and_the_next_run_resumes_its_trial(
    tmp_path: Path,
) -> None:
    cmd, url, proc = _start_run(tmp_path, "orphan")
    try:
        trial = wait_for(running_after_epoch(url, "orphan", 2), what="a trial at epoch 2")
        proc.kill()  # the parent only, as the OOM killer would
        proc.wait(timeout=30)
        assert _gone_within(trial.user_attrs["pid"], 10), "a worker outlived its run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    trials = optuna.load_study(study_name="orphan", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]  # requeued
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _check_resumed(url, "orphan", n_trials=2, max_epochs=MANY)


@pytest.mark.slow
def test_heartbeats_off_sigkill_of_everything_then_the_next_run_hits_the_total(
    tmp_path: Path,
) -> None:
    cmd, url, proc = _start_run(tmp_path, "nobeat")
    try:
        wait_for(running_after_epoch(url, "nobeat", 2), what="a trial at epoch 2")
        os.killpg(proc.pid, signal.SIGKILL)  # run and worker at once: nobody requeues
        proc.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    trials = optuna.load_study(study_name="nobeat", storage=url).trials
    assert [t.state for t in trials] == [TrialState.RUNNING]  # lost, were it not for its pid
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert main(["status", "--study", "nobeat", "--storage", url]) == 0
    _check_resumed(url, "nobeat", n_trials=2, max_epochs=MANY)
