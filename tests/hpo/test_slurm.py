"""`basset-hpo slurm`: the sbatch script it writes, every bad input (fake sbatch/sinfo/squeue on
PATH), and, on the real one-node SLURM that .ci/slurm.sh starts, job arrays of a tiny study on
PostgreSQL: exact totals, trials that know their array task, scancel and resubmission."""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import URL, make_url

from hpo import progress, service_tables, slurm
from hpo.cli import main as hpo_main
from hpo.config import load_study
from hpo.storage import make_engine
from hpo.study import prepare_study
from hpo_testutil import study_toml, tiny_data, write_h5
from reliability_testutil import study_file, wait_for

HPO = str(Path(sys.executable).parent / "basset-hpo")
HOST = os.uname().nodename.split(".")[0]
REMOTE_PG = "postgresql+psycopg://basset@db.example.org/hpo"


def _fake(folder: Path, name: str, body: str) -> Path:
    """An executable shell script `name` in `folder` (put on PATH by the test)."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bin folder first on PATH: sinfo names two nodes, sbatch records its stdin and answers
    job 4242 (tests replace either); the study file `tiny` in the current folder."""
    bin_dir = tmp_path / "bin"
    _fake(bin_dir, "sinfo", "printf 'node1\\nnode2\\n'")
    _fake(bin_dir, "sbatch",
          f'cat > {tmp_path}/submitted.sh; echo "$@" > {tmp_path}/args; echo 4242')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.delenv("BASSET_HPO_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    study_toml(tmp_path)
    return bin_dir


def _slurm(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = hpo_main(["slurm", "--study", "tiny.toml", *args])
    except SystemExit as stop:  # argparse
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_dry_run_prints_a_script_whose_tasks_exec_the_same_run_with_their_own_seed(
    fakes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _slurm(capsys, "--n-trials", "12", "--tasks", "3", "--gpus-per-task", "2",
                            "--time", "1-00:00:00", "--partition", "gpu", "--account", "lab",
                            "--sbatch-arg=--mem=32G", "--storage", REMOTE_PG, "--dry-run")
    assert code == 0, err
    options = re.findall(r"^#SBATCH (\S+)$", out, flags=re.MULTILINE)
    assert options == ["--job-name=basset-hpo-tiny", "--array=0-2",
                       f"--output={tmp_path}/studies/tiny/slurm/%A_%a.log", "--gres=gpu:2",
                       "--time=1-00:00:00", "--signal=B:TERM@300", "--partition=gpu",
                       "--account=lab", "--mem=32G"]
    assert f"\ncd {tmp_path}\n" in out
    assert f"exec {HPO} run --study tiny.toml --n-trials 12" in out
    assert "--gpus all" in out
    assert not (tmp_path / "submitted.sh").exists() and not (tmp_path / "studies").exists()

    # The script itself: task 2 execs (same pid) the command with seed 1 + 2000.
    record = tmp_path / "record"
    fake_hpo = _fake(tmp_path / "fakehpo", "basset-hpo", f'echo "$$ $*" > {record}')
    job = slurm.ArrayJob(study="tiny.toml", name="tiny", url=REMOTE_PG, n_trials=12, tasks=3,
                         seed=1, workdir=tmp_path, basset_hpo=str(fake_hpo), gpus_per_task=0)
    (tmp_path / "job.sh").write_text(slurm.script(job))
    proc = subprocess.Popen(["bash", str(tmp_path / "job.sh")],
                            env={**os.environ, "SLURM_ARRAY_TASK_ID": "2"})
    assert proc.wait(timeout=10) == 0
    pid, *argv = record.read_text().split()
    assert int(pid) == proc.pid
    assert argv == ["run", "--study", "tiny.toml", "--n-trials", "12", "--storage", REMOTE_PG,
                    "--gpus", "none", "--seed", "2001"]


@pytest.mark.parametrize(("limit", "seconds", "lead"), [
    ("02:00:00", 7200, 300), ("5", 300, 150), ("10:30", 630, 300), ("1-02", 93600, 300),
    ("0-00:01:30", 90, 45),
])
def test_time_limits_parse_as_slurm_reads_them(limit: str, seconds: int, lead: int) -> None:
    assert slurm.time_limit_seconds(limit) == seconds
    assert slurm.stop_lead(limit) == lead


def test_the_stop_lead_covers_one_evaluation_interval() -> None:
    # 200,000 sequences at 1,000 seq/s, plus the 120 s margin; still at most half the limit.
    assert slurm.stop_lead("02:00:00", eval_every=200_000) == 320
    assert slurm.stop_lead(None, eval_every=30_000) == 150
    assert slurm.stop_lead("5", eval_every=200_000) == 150


def test_a_submitted_job_prints_its_id_and_keeps_its_script(
    fakes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake(fakes, "sinfo", f"echo {HOST}")  # a one-node cluster: this host
    code, out, err = _slurm(capsys, "--n-trials", "4", "--tasks", "2", "--gpus-per-task", "0")
    assert code == 0, err
    assert out.startswith("submitted job 4242: 2 task(s) of study tiny, 4 trials in total")
    kept = tmp_path / "studies/tiny/slurm/4242.sh"
    assert kept.read_text() == (tmp_path / "submitted.sh").read_text()
    assert (tmp_path / "args").read_text().split() == ["--parsable"]
    assert "--storage sqlite:///studies/tiny.db --gpus none" in kept.read_text()


BAD = {
    "no-tasks": (["--tasks", "0"], "argument --tasks: must be > 0, not 0"),
    "negative-gpus": (["--gpus-per-task", "-1"], "--gpus-per-task must be >= 0"),
    "time-words": (["--time", "two hours"], "--time 'two hours': use HH:MM:SS"),
    "time-minutes-99": (["--time", "1:99:00"], "minutes and seconds go up to 59"),
    "time-zero": (["--time", "00:00:00"], "must be > 0"),
    "sqlite-many-hosts": ([], ("SQLite (studies/tiny.db) serves one host, and the 2 task(s) "
                               "may run on nodes node1, node2")),
    "loopback-pg": (["--storage", "postgresql+psycopg://basset@127.0.0.1:5432/hpo"],
                    "PostgreSQL on 127.0.0.1 is reachable from this host only"),
    "password": (["--storage", "postgresql+psycopg://basset:s3cret-pw@db.example.org/hpo"],
                 "holds a credential (password), which the job script would carry in clear"),
    # issue 25: a credential in the query, and values that would add lines to the script
    "password-in-query": (["--storage", "postgresql+psycopg:///hpo?user=u&password=s3cret-pw&"
                           "host=db.example.org"], "holds a credential (password)"),
    "sslpassword-in-query": (["--storage", "postgresql+psycopg://u@db.example.org/hpo?"
                              "sslpassword=s3cret-pw"], "(sslpassword)"),
    "sbatch-arg-newline": (["--sbatch-arg=--mem=1G\nrm -rf ~"], "--sbatch-arg 1 '--mem=1G\\nrm"),
    "partition-newline": (["--partition", "gpu\nrm -rf ~"], "control character '\\n'"),
    "account-carriage-return": (["--account", "lab\rtouch x"], "--account"),
    "time-newline": (["--time", "1:00:00\n"], "--time"),
    "storage-newline": (["--storage", "postgresql+psycopg://u@db.example.org/hpo\nrm -rf ~"],
                        "holds a control character"),
}


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("dry_run", [False, True])
def test_bad_input_is_one_line_and_exit_2_with_nothing_submitted(
    case: str, dry_run: bool, fakes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, says = BAD[case]
    code, out, err = _slurm(capsys, "--n-trials", "4", "--tasks", "2", *args,
                            *(["--dry-run"] if dry_run else []))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and says in err, err
    assert "s3cret-pw" not in err
    assert not (tmp_path / "submitted.sh").exists() and not (tmp_path / "studies").exists()


def test_a_password_in_the_environment_is_refused_too(
    fakes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BASSET_HPO_STORAGE", "postgresql+psycopg://basset:s3cret-pw@db/hpo")
    code, _, err = _slurm(capsys, "--n-trials", "4", "--tasks", "1", "--dry-run")
    assert code == 2 and "~/.pgpass or $PGPASSWORD" in err and "s3cret-pw" not in err


def test_no_sbatch_on_path_and_a_refused_partition_submit_nothing(
    fakes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with_fakes = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, err = _slurm(capsys, "--n-trials", "4", "--tasks", "1")
    assert (code, out) == (2, "") and err == (
        "error: no sbatch on PATH: run this on a SLURM login node (--dry-run prints the script)\n")

    monkeypatch.setenv("PATH", with_fakes)
    _fake(fakes, "sbatch", "cat >/dev/null\necho 'sbatch: error: invalid partition specified: "
          "nope' >&2\necho 'sbatch: error: Batch job submission failed: Invalid partition name "
          "specified' >&2\nexit 1")
    code, out, err = _slurm(capsys, "--n-trials", "4", "--tasks", "1", "--partition", "nope")
    assert (code, out) == (2, "") and err == (
        "error: sbatch refused the job: invalid partition specified: nope; Batch job submission "
        "failed: Invalid partition name specified\n")
    assert not (tmp_path / "studies").exists()  # not even the logs' folder


def test_a_postgresql_that_does_not_answer_is_refused_before_sbatch(
    fakes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake(fakes, "sinfo", f"echo {HOST}")  # loopback is fine on a one-node cluster...
    code, out, err = _slurm(capsys, "--n-trials", "4", "--tasks", "2",
                            "--storage", "postgresql+psycopg://basset@127.0.0.1:1/hpo")
    assert (code, out) == (2, "")  # ...but nothing listens on port 1
    assert err == "error: cannot reach PostgreSQL at 127.0.0.1:1 (connection refused)\n"
    assert not (tmp_path / "submitted.sh").exists() and not (tmp_path / "studies").exists()


def test_status_lists_the_studys_slurm_jobs(
    fakes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_study(load_study("tiny.toml"), "sqlite:///studies/tiny.db")
    _fake(fakes, "squeue", f'echo "$@" > {tmp_path}/squeue-args\n'
          "echo '4242_1|RUNNING|1:02|node1'\necho '4242_[2-3]|PENDING|0:00|(Resources)'")
    assert hpo_main(["status", "--study", "tiny.toml"]) == 0
    out = capsys.readouterr().out
    jobs = out.split("slurm jobs:\n")[1].splitlines()
    assert [line.split() for line in jobs] == [
        ["job", "state", "time", "nodes", "(reason)"], ["4242_1", "RUNNING", "1:02", "node1"],
        ["4242_[2-3]", "PENDING", "0:00", "(Resources)"]]
    assert "--name basset-hpo-tiny" in (tmp_path / "squeue-args").read_text()

    for body in ("exit 0",  # nothing queued: no section
                 "echo 'squeue: error: Could not establish a configuration source' >&2; exit 1"):
        _fake(fakes, "squeue", body)  # no cluster behind SLURM's clients: status stays quiet
        assert hpo_main(["status", "--study", "tiny.toml"]) == 0
        out, err = capsys.readouterr()
        assert "slurm jobs" not in out and err == ""


@pytest.mark.parametrize(("env", "name"), [
    ({}, f"{HOST}/1234/3"),
    ({"SLURM_JOB_ID": "77"}, f"{HOST}/slurm-77/3"),
    ({"SLURM_JOB_ID": "78", "SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "1"},
     f"{HOST}/slurm-77_1/3"),
])
def test_the_worker_name_carries_the_slurm_job_and_task(
    env: dict[str, str], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert slurm.worker_name(3, 1234) == name


# --- the real SLURM (.ci/slurm.sh) and PostgreSQL (.ci/postgres.sh) ---------------------------

PARTITION = os.environ.get("BASSET_HPO_TEST_SLURM")
needs_slurm = [
    pytest.mark.slurm, pytest.mark.postgres,
    pytest.mark.skipif(not PARTITION, reason=os.environ.get(
        "BASSET_HPO_TEST_SLURM_SKIP", "BASSET_HPO_TEST_SLURM is not set (.ci/slurm.sh starts it)")),
]
# stagnant_t = EPOCHS: every trial trains them all, long enough (about 10 s on idle cores) that
# both tasks are caught mid-trial and both take trials, however fast the machine.
EPOCHS = 30


class Cluster:
    """One test's study on the real SLURM: submit arrays, wait for them, read the trials."""

    def __init__(self, folder: Path, n_trials: int, pg_url: str) -> None:
        assert PARTITION
        self.folder, self.n_trials = folder, n_trials
        self.name = f"slurm_{uuid.uuid4().hex[:8]}"
        pg = make_url(pg_url)
        self.url = URL.create(pg.drivername, pg.username, None, pg.host, pg.port,
                              pg.database).render_as_string(hide_password=False)
        self.reader = pg_url  # the test itself reads with the password
        self.password = str(pg.password)
        self.study = study_file(folder, self.name, write_h5(folder / "tiny.h5", tiny_data()),
                                max_epochs=EPOCHS)
        self.jobs: list[str] = []

    def submit(self, tasks: int, *extra: str) -> tuple[int, str, str]:
        """basset-hpo slurm in this process (from the study's folder, $PGPASSWORD set):
        (exit code, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = hpo_main(["slurm", "--study", str(self.study), "--n-trials", str(self.n_trials),
                             "--tasks", str(tasks), "--gpus-per-task", "0", "--storage", self.url,
                             "--partition", PARTITION or "", "--time", "00:10:00", *extra])
        found = re.match(r"submitted job (\d+):", out.getvalue())
        if found:
            self.jobs.append(found[1])
        return code, out.getvalue(), err.getvalue()

    def queued(self, job: str) -> bool:
        done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i"], capture_output=True,
                              text=True, timeout=30, check=False)
        return bool(done.stdout.strip())

    def wait_done(self, job: str, timeout: float = 240) -> None:
        try:
            wait_for(lambda: not self.queued(job), timeout=timeout, what=f"job {job} to end",
                     every=0.5)
        except AssertionError:
            raise AssertionError(f"job {job} still queued; logs:\n{self.logs(job)}") from None

    def logs(self, job: str) -> str:
        folder = self.folder / "studies" / self.name / "slurm"
        logs = sorted(folder.glob(f"{job}_*.log"))
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in logs)

    def trials(self) -> list[FrozenTrial]:
        study = optuna.load_study(study_name=self.name, storage=self.reader)
        return study.get_trials(deepcopy=False)

    def cancel_all(self) -> None:
        for job in self.jobs:
            subprocess.run(["scancel", job], timeout=30, check=False)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            pg_url: str) -> Iterator[Callable[[int], Cluster]]:
    """Studies of this test, submitted from tmp_path with the password in $PGPASSWORD only."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PGPASSWORD", str(make_url(pg_url).password))
    made: list[Cluster] = []

    def make(n_trials: int) -> Cluster:
        made.append(Cluster(tmp_path, n_trials, pg_url))
        return made[-1]

    yield make
    for c in made:  # a failed test leaves nothing queued
        c.cancel_all()


def _workers(trials: list[FrozenTrial]) -> set[str]:
    return {str(t.user_attrs["worker"]) for t in trials if "worker" in t.user_attrs}


def real_slurm(test):  # type: ignore[no-untyped-def]
    for mark in needs_slurm:
        test = mark(test)
    return test


@real_slurm
def test_a_two_task_array_ends_with_exactly_n_trials_from_both_tasks(
    cluster: Callable[[int], Cluster], tmp_path: Path
) -> None:
    c = cluster(4)
    code, out, err = c.submit(1, "--partition", "no-such-partition")  # sbatch's refusal
    assert (code, out) == (2, "")
    assert re.fullmatch(r"error: sbatch refused the job: .*[Pp]artition.*\n", err)
    assert not (tmp_path / "studies").exists()
    code, _, err = c.submit(2)
    assert code == 0, err
    job = c.jobs[0]
    c.wait_done(job)
    trials = c.trials()
    assert progress.counted(trials) == 4, c.logs(job)
    assert sorted(t.number for t in trials) == list(range(4))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert _workers(trials) == {f"{HOST}/slurm-{job}_0/0", f"{HOST}/slurm-{job}_1/0"}, c.logs(job)
    script = (tmp_path / "studies" / c.name / "slurm" / f"{job}.sh").read_text()
    assert c.password not in script + c.logs(job)
    assert "4/4 done" in c.logs(job)
    # The report's timeline has one row per array task's worker.
    assert hpo_main(["report", "--study", str(c.study), "--storage", c.reader,
                     "-o", str(tmp_path / "report.html")]) == 0
    html = (tmp_path / "report.html").read_text()
    assert f"slurm-{job}_0/0" in html and f"slurm-{job}_1/0" in html


@real_slurm
def test_scancel_requeues_running_trials_and_a_resubmission_ends_exactly(
    cluster: Callable[[int], Cluster], capsys: pytest.CaptureFixture[str]
) -> None:
    c = cluster(4)
    assert c.submit(2)[0] == 0
    first = c.jobs[0]

    def both_tasks_mid_trial() -> list[FrozenTrial] | None:
        if not c.queued(first):
            raise AssertionError(f"job {first} ended before both tasks were mid-trial:\n"
                                 f"{c.logs(first)}")
        try:
            running = [t for t in c.trials() if t.state == TrialState.RUNNING
                       and max(t.intermediate_values, default=0) >= 2]
        except KeyError:  # the study is not created yet
            return None
        return running if len(_workers(running)) == 2 else None

    wait_for(both_tasks_mid_trial, timeout=240, what="both tasks at epoch 2", every=0.3)
    # Task 0 as at its time limit (--signal=B:TERM reaches the batch shell only, which exec'd
    # basset-hpo run); task 1 by a plain scancel (SIGTERM to every process of the job).
    subprocess.run(["scancel", "--batch", "--signal=TERM", f"{first}_0"], check=True, timeout=30)
    subprocess.run(["scancel", f"{first}_1"], check=True, timeout=30)
    c.wait_done(first)
    trials = c.trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING], c.logs(first)
    stopped = [t for t in trials if t.state == TrialState.FAIL]
    assert {t.user_attrs["fail_reason"] for t in stopped} == {"interrupted"}
    assert {str(t.user_attrs["worker"]).split("/")[1] for t in stopped} == {
        f"slurm-{first}_0", f"slurm-{first}_1"}
    assert len([t for t in trials if t.state == TrialState.WAITING]) == len(stopped)
    assert c.logs(first).count("interrupted: ") == 2

    assert c.submit(2)[0] == 0
    second = c.jobs[1]
    assert hpo_main(["status", "--study", str(c.study), "--storage", c.reader]) == 0
    jobs = capsys.readouterr().out.split("slurm jobs:\n")[1]
    assert re.search(rf"^{second}_\S+\s+(PENDING|RUNNING)", jobs, flags=re.MULTILINE), jobs
    c.wait_done(second)
    trials = c.trials()
    assert progress.counted(trials) == 4, c.logs(second)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4 and len(trials) == 4 + len(stopped)
    # Each interrupted trial resumed once, from its last epoch: no epoch lost or trained twice.
    epochs: dict[int, list[int]] = {}
    for row in service_tables.read_epochs(make_engine(c.reader), c.name):
        epochs.setdefault(row["trial_number"], []).append(row["epoch"])
    for trial in stopped:
        copy = next(t for t in complete if t.system_attrs.get("failed_trial") == trial.number)
        last = max(trial.intermediate_values)
        assert epochs[trial.number] == list(range(1, last + 1))
        assert epochs.get(copy.number, []) == list(range(last + 1, EPOCHS + 1))
        assert f"/slurm-{second}_" in str(copy.user_attrs["worker"])
