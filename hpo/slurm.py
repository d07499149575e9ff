"""`basset-hpo slurm`: a SLURM job array whose tasks all run the same `basset-hpo run`.

The job is a plain sbatch script (printed by --dry-run, kept beside the logs), not a library's
pickled callable: a user must be able to read what runs on the cluster, rerun it by hand and
change it. The study's storage coordinates the tasks exactly as it coordinates hosts
(hpo.workers), so the script holds no scheduling logic of its own: each task has its own
sampler seed, `exec`s `basset-hpo run` (the SIGTERM of scancel or of --signal reaches it
directly, and it requeues its running trials), and `--n-trials` stays the study's total.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy
from sqlalchemy.engine import URL

from hpo.errors import ConfigError
from hpo.storage import credentials, make_engine, mask, parse_url, storage_error

log = logging.getLogger(__name__)
JOB_PREFIX = "basset-hpo-"
SEED_STRIDE = 1000  # task i runs with --seed seed + 1000 i (its workers derive theirs)
STOP_LEAD_S = 300  # SIGTERM this long before the time limit (at most half the limit)
# With eval_every the lead is sized from the stop bound (one evaluation interval): SLURM's early
# signal and the checkpoint/requeue/exit, plus the interval's sequences at the slowest speed a
# GPU trial is expected to train at (a CPU trial is slower: give --signal yourself).
STOP_MARGIN_S = 120
SLOWEST_SEQS_PER_S = 1000
# eval_every = "auto": an interval is eval_seconds of the timed reference trial; a trial this
# many times slower than it still stops within the lead
AUTO_SLOWER = 3
COMMAND_TIMEOUT_S = 60
SQUEUE_TIMEOUT_S = 15  # status waits no longer for a controller that does not answer
LOOPBACK_HOSTS = ("", "localhost", "::1")


@dataclass(frozen=True)
class ArrayJob:
    """Everything the sbatch script says."""

    study: str  # --study as given (a name or a .toml path, resolved from workdir)
    name: str  # the study's name
    url: str  # storage URL, no password
    n_trials: int
    tasks: int
    seed: int  # the study's base sampler seed
    workdir: Path
    basset_hpo: str  # the console script the tasks run (the one that wrote the script)
    gpus_per_task: int = 1
    eval_every: int | None = None  # the study's: sizes the SIGTERM lead
    eval_seconds: float | None = None  # the study's with eval_every = "auto": the same
    time_limit: str | None = None
    partition: str | None = None
    account: str | None = None
    sbatch_args: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Every value the script holds is one line: a newline would start a shell line."""
        values = {"--study": self.study, "--storage": self.url, "--time": self.time_limit,
                  "--partition": self.partition, "--account": self.account,
                  "the working folder": str(self.workdir), "basset-hpo": self.basset_hpo}
        values |= {f"--sbatch-arg {i + 1}": arg for i, arg in enumerate(self.sbatch_args)}
        for flag, value in values.items():
            bad = next((c for c in value or "" if not c.isprintable()), None)
            if value is not None and bad is not None:
                shown = mask(value) if flag == "--storage" else value
                raise ConfigError(f"{flag} {shown!r} holds the control character {bad!r}, which "
                                  "would change the job script")

    @property
    def job_name(self) -> str:
        return job_name(self.name)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "studies" / self.name / "slurm"


def console_script() -> str:
    """The basset-hpo the tasks run: this one (beside this Python), else the one on PATH."""
    beside = Path(sys.executable).parent / "basset-hpo"
    return str(beside) if beside.exists() else shutil.which("basset-hpo") or "basset-hpo"


def job_name(study_name: str) -> str:
    return f"{JOB_PREFIX}{study_name}"


def worker_name(rank: int, run_pid: int | None = None) -> str:
    """host/pid/rank (pid: the `run` process's, so two runs on one host name their workers
    apart), with the SLURM job inside a job: host/slurm-<job>_<task>/rank for an array task
    (the job id is the array's, as in `squeue` and the log names), host/slurm-<job>/rank."""
    host = socket.gethostname()
    job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if job and task:
        return f"{host}/slurm-{job}_{task}/{rank}"
    if os.environ.get("SLURM_JOB_ID"):
        return f"{host}/slurm-{os.environ['SLURM_JOB_ID']}/{rank}"
    return f"{host}/{os.getpid() if run_pid is None else run_pid}/{rank}"


_TIME = re.compile(r"(?:(?P<days>\d+)-)?(?P<clock>\d+(?::\d+){0,2})")


def time_limit_seconds(text: str) -> int:
    """SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; ConfigError otherwise."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise ConfigError(f"--time {text!r}: use HH:MM:SS (or D-HH:MM:SS, or minutes)")
    parts = [int(p) for p in match["clock"].split(":")]
    if match["days"] is not None:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = parts + [0] * (3 - len(parts))
    elif len(parts) == 3:  # H:M:S
        hours, minutes, seconds = parts
    else:  # M, M:S
        hours, minutes, seconds = 0, parts[0], parts[1] if len(parts) == 2 else 0
    if (len(parts) > 1 and seconds >= 60) or (len(parts) == 3 and minutes >= 60):
        raise ConfigError(f"--time {text!r}: minutes and seconds go up to 59")
    total = ((int(match["days"] or 0) * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ConfigError(f"--time {text!r}: the time limit must be > 0")
    return total


def stop_lead(time_limit: str | None, eval_every: int | None = None,
              eval_seconds: float | None = None) -> int:
    """Seconds before the limit at which the task is told to stop: a trial stops at its next
    evaluation, so one interval of eval_every sequences at SLOWEST_SEQS_PER_S (with "auto":
    AUTO_SLOWER x eval_seconds) plus STOP_MARGIN_S (SLURM may signal up to a minute early: its
    event loop is that coarse); STOP_LEAD_S per epoch. At most half the limit."""
    lead = STOP_LEAD_S
    if eval_every is not None:
        lead = STOP_MARGIN_S + math.ceil(eval_every / SLOWEST_SEQS_PER_S)
    elif eval_seconds is not None:
        lead = STOP_MARGIN_S + math.ceil(AUTO_SLOWER * eval_seconds)
    if time_limit is None:
        return lead
    return max(1, min(lead, time_limit_seconds(time_limit) // 2))


def _is_loopback(host: str | None) -> bool:
    return (host or "") in LOOPBACK_HOSTS or (host or "").startswith("127.")


def _this_host(node: str) -> bool:
    short = socket.gethostname().split(".")[0]
    return node.split(".")[0] in (short, "localhost")


def partition_nodes(partition: str | None) -> list[str] | None:
    """Host names of the partition's nodes (all partitions' without one), None when sinfo
    cannot tell; none for a partition SLURM does not know (sbatch then refuses it)."""
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        return None
    command = [sinfo, "-h", "-N", "-o", "%n"] + (["-p", partition] if partition else [])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        return None
    return sorted(set(done.stdout.split())) if done.returncode == 0 else None


def check_storage(url: str, tasks: int, nodes: list[str] | None) -> None:
    """A storage every task can reach, and no password in it; ConfigError with the reason.
    Storage only this host reaches (SQLite for several tasks, PostgreSQL on loopback) is fine
    only when every node of the partition is this host."""
    parsed: URL = parse_url(url)
    carried = credentials(parsed)
    if carried:
        raise ConfigError(
            f"storage {mask(url)} holds a credential ({', '.join(carried)}), which the job script "
            "would carry in clear: leave it out of the URL and put it in ~/.pgpass or $PGPASSWORD "
            "(jobs inherit the environment)"
        )
    if parsed.get_backend_name() == "sqlite":
        local = f"SQLite ({parsed.database}) serves one host" if tasks > 1 else None
    else:
        local = (f"PostgreSQL on {parsed.host or 'a local socket'} is reachable from this host only"
                 if _is_loopback(parsed.host) else None)
    if local is None or (nodes is not None and all(_this_host(n) for n in nodes)):
        return
    where = f"nodes {', '.join(nodes)}" if nodes else "nodes that sinfo cannot name"
    raise ConfigError(
        f"storage {mask(url)}: {local}, and the {tasks} task(s) may run on {where}; "
        "use PostgreSQL on a host the nodes reach (--storage postgresql+psycopg://USER@HOST/DB)"
    )


def check_connection(url: str) -> None:
    """PostgreSQL answers and accepts the login (a queued job would only fail hours later)."""
    if parse_url(url).get_backend_name() != "postgresql":
        return
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise storage_error(url, err) from None
    finally:
        engine.dispose()


def script(job: ArrayJob) -> str:
    """The sbatch script: #SBATCH options, then one `exec basset-hpo run`."""
    q = shlex.quote
    lead = stop_lead(job.time_limit, job.eval_every, job.eval_seconds)
    written = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "#!/bin/bash",
        f"# Written by basset-hpo slurm ({written}): study {job.name}, {job.n_trials} trials in",
        f"# total over {job.tasks} array task(s). Every task runs the same `basset-hpo run`; the",
        "# study's storage hands out the trials, so submitting this again continues the study.",
        f"#SBATCH --job-name={job.job_name}",
        f"#SBATCH --array=0-{job.tasks - 1}",
        f"#SBATCH --output={job.log_dir}/%A_%a.log",
    ]
    if job.gpus_per_task:
        lines.append(f"#SBATCH --gres=gpu:{job.gpus_per_task}")
    if job.time_limit:
        lines.append(f"#SBATCH --time={job.time_limit}")
    lines += [
        f"# SIGTERM to basset-hpo run {lead} s before the time limit: each trial stops at its next",
        "# evaluation, is requeued (resumed from there by the next run) and the run exits.",
        f"#SBATCH --signal=B:TERM@{lead}",
    ]
    lines += [f"#SBATCH --partition={job.partition}"] if job.partition else []
    lines += [f"#SBATCH --account={job.account}"] if job.account else []
    lines += [f"#SBATCH {arg}" for arg in job.sbatch_args]
    gpus = "all" if job.gpus_per_task else "none"
    lines += [
        "set -euo pipefail",
        f"cd {q(str(job.workdir))}",
        (f"# Task i samples with seed {job.seed} + {SEED_STRIDE} i (its workers k add k): no two "
         "workers suggest the same points."),
        f"exec {q(job.basset_hpo)} run --study {q(job.study)} --n-trials {job.n_trials} \\",
        f"    --storage {q(job.url)} --gpus {gpus} \\",
        f'    --seed "$(({job.seed} + {SEED_STRIDE} * SLURM_ARRAY_TASK_ID))"',
    ]
    return "\n".join(lines) + "\n"


def submit(job: ArrayJob) -> str:
    """sbatch the script (from stdin), keep a copy beside the logs, return the job id."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise ConfigError("no sbatch on PATH: run this on a SLURM login node (--dry-run prints "
                          "the script)")
    text = script(job)
    created = [p for p in (job.log_dir, *job.log_dir.parents) if not p.exists()]  # deepest first
    job.log_dir.mkdir(parents=True, exist_ok=True)  # SLURM does not create the logs' folder
    try:
        done = subprocess.run([sbatch, "--parsable"], input=text, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT_S, cwd=job.workdir, check=False)
    except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess([], 1, "", f"no answer within {COMMAND_TIMEOUT_S} s")
    if done.returncode != 0:
        for folder in created:  # nothing is left behind by a refused job
            folder.rmdir()
        raise ConfigError(f"sbatch refused the job: {_one_line(done.stderr)}")
    job_id = done.stdout.strip().split(";")[0]  # --parsable: id[;cluster]
    kept = job.log_dir / f"{job_id}.sh"
    tmp = kept.with_suffix(".sh.tmp")
    tmp.write_text(text)
    tmp.replace(kept)
    return job_id


def _one_line(stderr: str) -> str:
    """sbatch's messages without their `sbatch: error: ` prefixes, as one line."""
    lines = [re.sub(r"^sbatch:\s*(error:\s*)?", "", line).strip() for line in stderr.splitlines()]
    return "; ".join(line for line in lines if line) or "no message"


def queued_jobs(study_name: str) -> list[tuple[str, str, str, str]] | None:
    """The study's jobs (this user's) still queued or running, as (job, state, time, nodes or
    reason) from squeue; None when there is no squeue or it does not answer (a machine with
    SLURM's clients but no cluster: status stays quiet about it)."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    command = [squeue, "--me", "-h", "--name", job_name(study_name), "-o", "%i|%T|%M|%R"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        log.debug("squeue gave no answer within %d s", SQUEUE_TIMEOUT_S)
        return None
    if done.returncode != 0:
        log.debug("squeue failed: %s", _one_line(done.stderr))
        return None
    rows = [line.split("|", 3) for line in done.stdout.splitlines() if line.count("|") == 3]
    return [(r[0], r[1], r[2], r[3]) for r in rows]
