"""Worker processes on the default SQLite storage: concurrency, exact totals, continuation."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from basset.data.h5read import BassetData
from basset.params import JobParams
from basset.training.resident import ResidentData
from basset.training.seam import TrainHooks, TrainOptions, TrainResult
from hpo import progress
from hpo.cli import main
from hpo.config import load_study
from hpo.devices import plan_devices
from hpo.errors import ConfigError
from hpo.study import prepare_study, worker_seed
from hpo.supervisor import run_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import quick_train, scripted_train, study_toml

REF = ('{label = "ref", conv_filters = [8], conv_filter_sizes = [5], pool_width = [2], '
       "hidden_units = [16], learning_rate = 0.01, batch_size = 32}")


@pytest.mark.slow  # two spawned workers training for real; the in-process race test stays fast
def test_two_workers_share_sqlite_and_hit_the_total_exactly(
    tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str]
) -> None:
    # Instant fake trials: the two workers write to the database as often as they can.
    monkeypatch.chdir(tmp_path)
    path = study_toml(tmp_path, f"enqueue = [{REF}]", pruner='type = "hyperband"')
    config = load_study(str(path))
    url = "sqlite:///studies/tiny.db"

    plan = RunPlan(config=config, url=url, n_trials=8, devices=["cpu", "cpu"], threads=1,
                   quiet=True, train_fn=quick_train)
    run_study(plan)
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert len(trials) == 8
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), [
        (t.number, t.state, t.user_attrs.get("fail_reason")) for t in trials
    ]
    assert trials[0].user_attrs["reference"] == "ref" and trials[0].params["conv_filters_0"] == 8
    assert {t.user_attrs["worker"].rsplit("/", 1)[1] for t in trials} == {"0", "1"}
    with sqlite3.connect(tmp_path / "studies" / "tiny.db") as conn:
        (rows,) = conn.execute("select count(*) from basset_epochs").fetchone()
        (journal,) = conn.execute("pragma journal_mode").fetchone()
    assert rows == sum(len(t.intermediate_values) for t in trials)
    assert journal == "wal"
    err = capfd.readouterr().err
    assert "locked" not in err and "Traceback" not in err

    assert main(["status", "--study", str(path)]) == 0
    out = capfd.readouterr().out
    counts = {
        s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED)
    }
    assert (f"tiny: 8 done ({counts[TrialState.COMPLETE]} complete, "
            f"{counts[TrialState.PRUNED]} pruned, 0 failed), 0 running") in out
    best = max(t.value for t in trials if t.state == TrialState.COMPLETE)
    assert f"(value {best:.4f}), params table:" in out and "conv_filters\t" in out


STORAGES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("storage", STORAGES)
def test_concurrent_workers_never_overshoot_even_with_a_slow_count(
    storage: str, tmp_path: Path, tiny_h5: Path, monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest
) -> None:
    # Four workers (threads here) whose trial count takes 0.2 s: without the study lock they
    # would all see the same count and all start a trial past the total.
    monkeypatch.chdir(tmp_path)
    name = f"t{time.time_ns()}"  # a PostgreSQL database outlives the test
    config = load_study(str(study_toml(tmp_path, f"enqueue = [{REF}]", name=name)))
    url = (request.getfixturevalue("pg_url") if storage == "postgres"
           else "sqlite:///studies/tiny.db")
    counted = progress.counted

    def slow_count(trials: list[FrozenTrial]) -> int:
        n = counted(trials)
        time.sleep(0.2)
        return n

    monkeypatch.setattr(progress, "counted", slow_count)

    def run(n_trials: int) -> tuple[int, list[FrozenTrial]]:
        prepare_study(config, url)
        plan = RunPlan(config=config, url=url, n_trials=n_trials, devices=["cpu"] * 4,
                       threads=1, train_fn=quick_train)
        with ThreadPoolExecutor(4) as pool:
            ran = sum(pool.map(lambda rank: run_trials(plan, rank), range(4)))
        return ran, optuna.load_study(study_name=name, storage=url).trials

    ran, trials = run(5)
    assert ran == 5 and len(trials) == 5
    ran, trials = run(7)  # a rerun continues the study: exactly the difference is added
    assert ran == 2 and len(trials) == 7
    assert [t.user_attrs.get("reference") for t in trials] == ["ref"] + [None] * 6


def test_no_trial_starts_after_the_timeout(tmp_path: Path, tiny_h5: Path) -> None:
    config = load_study(str(study_toml(tmp_path)))
    url = f"sqlite:///{tmp_path}/studies/tiny.db"
    prepare_study(config, url)
    plan = RunPlan(config=config, url=url, n_trials=5, devices=["cpu"], threads=1,
                   deadline=time.time() - 1, train_fn=quick_train)
    assert run_trials(plan, 0) == 0
    assert optuna.load_study(study_name="tiny", storage=url).trials == []


def test_a_running_trial_stops_at_the_timeout_and_keeps_its_best_epoch(
    tmp_path: Path, tiny_h5: Path
) -> None:
    # --timeout bounds the run's wall time: the trial past the deadline ends after that epoch,
    # COMPLETE with its best epoch so far, and no other trial starts.
    top = f"max_epochs = 5\nstagnant_t = 5\nenqueue = [{REF}]"
    config = load_study(str(study_toml(tmp_path, top)))
    url = f"sqlite:///{tmp_path}/studies/tiny.db"
    prepare_study(config, url)
    deadline = time.time() + 3
    played: list[int] = []

    def train(params: JobParams, data: BassetData, *, options: TrainOptions,
              hooks: TrainHooks, resident: ResidentData | None = None) -> TrainResult:
        def epoch_two_ends_late(epoch: int) -> None:
            played.append(epoch)
            if epoch == 2:
                time.sleep(max(0.0, deadline - time.time()) + 0.05)
        return scripted_train({8: [0.6, 0.55, 0.9, 0.95, 0.97]}, epoch_two_ends_late)(
            params, data, options=options, hooks=hooks)

    plan = RunPlan(config=config, url=url, n_trials=3, devices=["cpu"], threads=1,
                   deadline=deadline, train_fn=train)
    assert run_trials(plan, 0) == 1
    (trial,) = optuna.load_study(study_name="tiny", storage=url).trials
    assert played == [1, 2]
    assert trial.state == TrialState.COMPLETE and trial.value == 0.6
    assert trial.user_attrs["stop_reason"] == "timeout" and trial.user_attrs["best_epoch"] == 1


def test_runs_with_neighbouring_seeds_share_no_sampler_stream() -> None:
    """Runs --seed 1..5 with four workers each: twenty different sampler seeds, hence twenty
    different first suggestions (seed + rank gave run 1's worker 1 run 2's worker 0's)."""
    seeds = [worker_seed(seed, rank) for seed in range(1, 6) for rank in range(4)]
    assert len(set(seeds)) == 20 and all(0 <= s < 2**32 for s in seeds)
    assert worker_seed(1, 1) == worker_seed(1, 1)  # a rerun samples the same points

    def first_suggestion(seed: int) -> float:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        return study.ask().suggest_float("x", 0.0, 1.0)

    assert len({first_suggestion(s) for s in seeds}) == 20


def test_worker_plan_on_the_cpu() -> None:
    assert plan_devices(None, 1, None) == ["cpu"]
    assert plan_devices("none", 1, 3) == ["cpu"] * 3
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        plan_devices(None, 1, 0)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-CUDA message")
def test_asking_for_gpus_without_cuda_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        plan_devices("0,1", 1, None)


def test_a_worker_waiting_for_a_running_trial_leaves_when_it_ends(
    tmp_path: Path, tiny_h5: Path
) -> None:
    # Heartbeats on and the total reached while another worker's trial runs: this worker stays
    # (that trial may turn stale and need a retry), but leaves as soon as it ends, not after the
    # next heartbeat sweep (600 s here).
    path = study_toml(tmp_path)
    path.write_text(path.read_text().replace("interval = 0", "interval = 600\ngrace_period = 1200"))
    config = load_study(str(path))
    url = f"sqlite:///{tmp_path}/studies/tiny.db"
    prepare_study(config, url)
    study = optuna.load_study(study_name="tiny", storage=url)
    other = study.ask()  # another worker's trial, its owner recorded
    other.set_user_attr("host", "elsewhere")
    other.set_user_attr("pid", 1)
    plan = RunPlan(config=config, url=url, n_trials=1, devices=["cpu"], threads=1,
                   train_fn=quick_train)
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(run_trials, plan, 0, stop.is_set)
        try:
            time.sleep(3)
            assert not waiting.done()
            study.tell(other, 0.5)
            assert waiting.result(timeout=60) == 0
        finally:
            stop.set()
