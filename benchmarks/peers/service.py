"""The service as a user runs it: `basset-hpo run --study FILE --timeout B --workers 2` in a
fresh folder, on a copy of the demo study whose data is the benchmark's set; its epochs and
trials read back afterwards from its database (Optuna's public API and the service's own
`basset_epochs` table)."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import optuna

from peers.common import CONCURRENCY, Epoch, Record, Task, TrialRecord

ROOT = Path(__file__).resolve().parents[2]
UNCAPPED = 1_000_000  # --n-trials


def study_file(data: Path, folder: Path, name: str = "bench") -> Path:
    """The demo study (as main ships it) on `data`: same space, references, pruner, sampler."""
    text = (ROOT / "studies" / "demo.toml").read_text()
    text = re.sub(r'(?m)^name = .*$', f'name = "{name}"', text)
    text = re.sub(r'(?m)^data = .*$', f'data = "{data.resolve()}"', text)
    text = re.sub(r'(?m)^generate_demo_data = .*$', "generate_demo_data = false", text)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def run(task: Task, study: Path) -> Record:
    url = f"sqlite:///{task.workdir / 'service.db'}"
    # No trial cap (the demo study's n_trials is 20): like the other engines, the service
    # starts trials until the budget is spent.
    command = ["basset-hpo", "run", "--study", str(study), "--timeout", str(task.budget_s),
               "--n-trials", str(UNCAPPED), "--workers", str(CONCURRENCY),
               "--seed", str(task.seed), "--storage", url, "-q"]
    task.start = time.time()
    subprocess.run(command, cwd=task.workdir, check=True, capture_output=True, text=True)
    return _record(task, url, study.stem)


def _record(task: Task, url: str, name: str) -> Record:
    record = Record()
    with sqlite3.connect(task.workdir / "service.db") as db:
        rows = db.execute("select trial_number, epoch, valid_auroc, seconds, created_at from "
                          "basset_epochs where study_name = ? order by created_at",
                          (name,)).fetchall()
    for number, epoch, valid, seconds, created in rows:
        at = dt.datetime.fromisoformat(str(created))
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        record.epochs.append(Epoch(f"t{number}", int(epoch), at.timestamp() - task.start,
                                   float(valid), float(seconds)))
    study = optuna.load_study(study_name=name, storage=url)
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.COMPLETE:
            timeout = trial.user_attrs.get("stop_reason") == "timeout"
            state = "timeout" if timeout else "complete"
        elif trial.state == optuna.trial.TrialState.PRUNED:
            state = "pruned"
        else:
            continue
        values = [e.valid for e in record.epochs if e.trial == f"t{trial.number}"]
        record.trials.append(TrialRecord(
            f"t{trial.number}", state, max(values, default=float("nan")),
            trial.user_attrs.get("best_checkpoint"), bool(trial.user_attrs.get("rc", False)),
            len(values)))
    return record
