"""eval_every in a study: SIGTERM stops a trial at its next evaluation, mid-epoch, and the next
run resumes it there with no gap and no repeated batch."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from basset import TrainHooks, TrainOptions, TrainProgress, load_data, parse_params, train
from basset.training.checkpoint import read_checkpoint, read_history
from hpo import service_tables
from hpo.config import load_study
from hpo.storage import make_engine
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import write_h5
from reliability_testutil import running_after_epoch, study_file, wait_for
from synth_data import make_data

HPO = [str(Path(sys.executable).parent / "basset-hpo")]
EVALS = 150  # one batch of 32 each: 4.8 epochs of 1,000 sequences (31 batches an epoch)


@pytest.mark.slow  # two runs of real worker processes
def test_sigterm_stops_at_the_next_evaluation_and_the_rerun_resumes_mid_epoch(
    tmp_path: Path
) -> None:
    data = write_h5(tmp_path / "long.h5", make_data(n_train=1000, n_valid=40, n_test=10,
                                                    seq_len=60, num_targets=3, seed=3))
    study = study_file(tmp_path, "stop", data, max_epochs=EVALS)
    study.write_text(study.read_text().replace("seed = 1", "seed = 1\neval_every = 32"))
    url = f"sqlite:///{tmp_path}/stop.db"
    cmd = [*HPO, "run", "--study", str(study), "--storage", url, "--n-trials", "1", "-q",
           "--workers", "1"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(running_after_epoch(url, "stop", 2), timeout=300,  # a shared, loaded machine
                 what="a trial at evaluation 2")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    stopped = optuna.load_study(study_name="stop", storage=url).trials[0]
    last = max(stopped.intermediate_values)
    check = read_checkpoint(f"{stopped.user_attrs['save_prefix']}_check.pt")
    assert check.state.epoch == last and check.state.steps == last
    if last % 31:  # stopped inside an epoch: the checkpoint holds that epoch's order
        assert check.rng is not None and "pass" in check.rng

    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="stop", storage=url).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    copy = trials[1]
    assert copy.user_attrs["resumed_from"] == f"{stopped.user_attrs['save_prefix']}_check.pt"
    rows = service_tables.read_epochs(make_engine(url), "stop")
    assert [(r["trial_number"], r["epoch"]) for r in rows] == (
        [(0, e) for e in range(1, last + 1)] + [(1, e) for e in range(last + 1, EVALS + 1)])
    assert [r["sequences"] for r in rows] == [32 * e for e in range(1, EVALS + 1)]
    history = read_history(f"{stopped.user_attrs['save_prefix']}_check.pt")
    assert [m.sequences for m in history] == [32 * e for e in range(1, EVALS + 1)]


def test_a_stop_mid_epoch_ends_the_trial_at_its_next_evaluation_and_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 1,000 sequences in batches of 32: 31 batches an epoch; an evaluation every 3 batches.
    # The stop is asked for at the 7th batch: the trial ends at evaluation 3 (batch 9, mid-epoch
    # 1), not at the epoch's end; the requeued copy resumes there, and its curve is, bit for
    # bit, that of the same trial trained without a stop.
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    data = write_h5(tmp_path / "long.h5", make_data(n_train=1000, n_valid=40, n_test=10,
                                                    seq_len=60, num_targets=3, seed=3))
    study = study_file(tmp_path, "stop", data, max_epochs=12)
    study.write_text(study.read_text().replace("seed = 1", "seed = 1\neval_every = 96"))
    config = load_study(str(study))
    url = f"sqlite:///{tmp_path}/stop.db"
    prepare_study(config, url)
    asked: list[bool] = []

    def train_fn(params, data, *, options, hooks, resident=None):  # type: ignore[no-untyped-def]
        def on_progress(p: TrainProgress) -> None:
            hooks.on_progress(p)
            if p.sequences == 7 * 32:
                asked.append(True)

        return train(params, data, options=options, resident=resident,
                     hooks=TrainHooks(hooks.on_epoch_end, on_progress))

    plan = RunPlan(config=config, url=url, n_trials=1, devices=["cpu"], threads=1,
                   train_fn=train_fn)
    run_trials(plan, 0, lambda: bool(asked))
    stopped = optuna.load_study(study_name="stop", storage=url).trials[0]
    assert stopped.state == TrialState.FAIL and sorted(stopped.intermediate_values) == [1, 2, 3]
    prefix = stopped.user_attrs["save_prefix"]
    check = read_checkpoint(f"{prefix}_check.pt")
    assert check.state.steps == 9 and check.rng is not None and "pass" in check.rng

    asked.clear()
    run_trials(plan, 0, lambda: False)
    copy = optuna.load_study(study_name="stop", storage=url).trials[1]
    assert copy.state == TrialState.COMPLETE
    rows = service_tables.read_epochs(make_engine(url), "stop")
    assert [(r["trial_number"], r["epoch"], r["sequences"]) for r in rows] == (
        [(0, e, 96 * e) for e in range(1, 4)] + [(1, e, 96 * e) for e in range(4, 13)])
    straight = train(parse_params(stopped.user_attrs["params_table"], "table"), load_data(data),
                     options=TrainOptions(max_epochs=12, stagnant_t=12, eval_every=96,
                                          rand=stopped.user_attrs["seed"], quiet=True))
    assert [m.valid_metric for m in straight.history] == [
        copy.intermediate_values[e] for e in range(1, 13)]
    argv = copy.user_attrs["train_command"].split()  # how basset-train reruns it
    assert argv[argv.index("--eval-every") + 1] == "96"
    assert argv[argv.index("-rand") + 1] == str(stopped.user_attrs["seed"])
