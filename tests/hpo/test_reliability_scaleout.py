"""Many workers, many hosts: two `basset-hpo run` processes (two hosts) with two workers each on
one PostgreSQL study, and one process with three workers on the embedded SQLite default. Each
must end with exactly --n-trials trials: no overshoot, no duplicate, none lost, none left
RUNNING or WAITING. Also: a password in the storage URL never reaches any output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo import service_tables
from hpo.storage import make_engine
from reliability_testutil import study_file

HPO = str(Path(sys.executable).parent / "basset-hpo")
N_TRIALS = 12
EPOCHS = 40  # tiny epochs, but enough of them that a trial outlasts a process's start-up


@pytest.mark.slow  # hosts x workers real processes, 40 epochs per trial
@pytest.mark.parametrize("storage, hosts, workers", [
    pytest.param("postgres", 2, 2, marks=pytest.mark.postgres),
    ("sqlite", 1, 3),
])
def test_every_worker_of_every_host_joins_one_study_and_the_total_is_exact(
    storage: str, hosts: int, workers: int, tmp_path: Path, tiny_h5: Path,
    request: pytest.FixtureRequest
) -> None:
    name = f"hosts{time.time_ns()}"  # a PostgreSQL database outlives the test
    url = (request.getfixturevalue("pg_url") if storage == "postgres"
           else f"sqlite:///{tmp_path}/{name}.db")
    data = tiny_h5
    study = study_file(tmp_path, name, data, max_epochs=EPOCHS)
    procs = []
    for host in range(hosts):
        # Host 0 names the storage with --storage, host 1 through $BASSET_HPO_STORAGE.
        cmd = [HPO, "run", "--study", str(study), "--n-trials", str(N_TRIALS), "-q",
               "--workers", str(workers), "--seed", str(100 * host + 1)]
        env = dict(os.environ)
        if host == 0:
            cmd += ["--storage", url]
        else:
            env["BASSET_HPO_STORAGE"] = url
        folder = tmp_path / f"host{host}"  # each host its own working directory
        folder.mkdir()
        procs.append(subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "locked" not in err
        assert f"{name}: {N_TRIALS} done ({N_TRIALS} complete, 0 pruned, 0 failed), 0 running" \
            in out
        if storage == "postgres":
            assert "basset-ci-secret" not in out + err and "basset:" not in out + err

    trials = optuna.load_study(study_name=name, storage=url).trials
    assert [t.number for t in trials] == list(range(N_TRIALS))
    assert [t.state for t in trials] == [TrialState.COMPLETE] * N_TRIALS
    pids = {t.user_attrs["pid"] for t in trials}
    # Several workers ran trials, and with two hosts more than one host's worth of them.
    assert len(pids) >= max(2, (hosts - 1) * workers + 1), f"{len(pids)} workers ran trials"
    rows = service_tables.read_epochs(make_engine(url), name)
    assert len(rows) == N_TRIALS * EPOCHS
    assert len({(r["trial_number"], r["epoch"]) for r in rows}) == len(rows)


@pytest.mark.postgres
def test_passwords_never_reach_any_output(tmp_path: Path, tiny_h5: Path, pg_url: str) -> None:
    # run, status on the real study, and a wrong password: stdout and stderr never hold either
    # password. (Without a server, tests/test_bad_inputs.py checks an unreachable one.)
    name = f"mask{time.time_ns()}"
    data = tiny_h5
    study = study_file(tmp_path, name, data, max_epochs=1)
    secret, wrong_secret = "basset-ci-secret", "not-the-password-42"
    wrong = pg_url.replace(secret, wrong_secret)
    run = subprocess.run([HPO, "run", "--study", str(study), "--storage", pg_url,
                          "--n-trials", "1", "--workers", "1"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    status = subprocess.run([HPO, "status", "--study", str(study), "--storage", pg_url],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0 and f"{name}: 1 done" in status.stdout
    bad = subprocess.run([HPO, "status", "--study", str(study), "--storage", wrong],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1
    assert bad.stderr.startswith("error: PostgreSQL at 127.0.0.1:") and "password" in bad.stderr
    assert "***@127.0.0.1" in run.stderr  # the header line names the storage, masked
    for proc in (run, status, bad):
        assert secret not in proc.stdout + proc.stderr
        assert wrong_secret not in proc.stdout + proc.stderr
