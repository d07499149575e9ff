"""The study's evaluation interval (eval_every, "auto" timed once and recorded) and eval_subset
(the pruner sees the subset, the trial's value is its best model on the whole split)."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from basset import load_data, validate_checkpoint
from hpo import interval, slurm
from hpo.config import load_study
from hpo.errors import ConfigError
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import study_toml, tiny_data, write_h5


def _study(tmp_path: Path, top: str, **kwargs: object) -> Path:
    write_h5(tmp_path / "tiny.h5", tiny_data())
    return study_toml(tmp_path, top, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("top", "every", "seconds"), [
    ('eval_every = "auto"', None, 60.0),
    ('eval_every = "auto"\neval_seconds = 15', None, 15.0),
    ("eval_every = 96", 96, None),
    ("", None, None),
])
def test_eval_every_is_a_number_or_auto(tmp_path: Path, top: str, every: int | None,
                                        seconds: float | None) -> None:
    config = load_study(str(_study(tmp_path, top)))
    assert (config.eval_every, config.eval_seconds) == (every, seconds)


@pytest.mark.parametrize(("top", "message"), [
    ("eval_seconds = 30", 'eval_seconds: only with eval_every = "auto"'),
    ('eval_every = "fast"', 'eval_every must be a number of sequences or "auto", got \'fast\''),
    ("eval_every = 0", "eval_every must be >= 1, got 0"),
    ('eval_every = "auto"\neval_seconds = 0', "eval_seconds must be > 0, got 0.0"),
    ("eval_subset = 0", "eval_subset must be >= 1, got 0"),
])
def test_bad_intervals_are_refused(tmp_path: Path, top: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_study(str(_study(tmp_path, top)))


def test_an_interval_is_two_significant_figures_of_the_rate_times_the_seconds() -> None:
    assert interval.interval_from_rate(70.69, 60) == 4200
    assert interval.interval_from_rate(15_555.0, 60) == 930_000
    assert interval.interval_from_rate(0.01, 1) == 1
    assert interval.interval_from_rate(1.6, 60) == 96


def test_the_share_of_a_device_one_worker_gets() -> None:
    assert interval.worker_share(["cpu"] * 8, 1, 2) == 0.25
    assert interval.worker_share(["cpu"] * 2, 1, 2) == 1.0
    assert interval.worker_share(["cpu"] * 2, 2, 2) == 0.5
    assert interval.worker_share(["cuda:0", "cuda:0", "cuda:1"], 1, 2) == 0.5


def test_auto_times_once_and_every_later_run_uses_the_recorded_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_study(str(_study(tmp_path, 'eval_every = "auto"\neval_seconds = 30')))
    url = f"sqlite:///{tmp_path}/s.db"
    storage = prepare_study(config, url)
    timed: list[str] = []

    def fake(config: object, device: str, threads: int) -> tuple[str, float]:
        timed.append(device)
        return "fake", 40.0 if len(timed) == 1 else 4000.0

    monkeypatch.setattr(interval, "time_reference", fake)
    monkeypatch.setattr(interval, "cpu_cores", lambda: 2)
    first = interval.resolve(config, url, storage, ["cpu"] * 4, 1)
    assert (first.eval_every, first.eval_seconds) == (600, None)  # 40 seq/s x 1/2 x 30 s
    attrs = optuna.load_study(study_name="tiny", storage=url).user_attrs
    assert attrs["eval_every"] == 600
    assert attrs["eval_every_timing"]["seqs_per_s"] == 40.0
    assert attrs["eval_every_timing"]["share"] == 0.5
    again = interval.resolve(config, url, storage, ["cuda:0"], 1)  # another host, a GPU
    assert again.eval_every == 600 and timed == ["cpu"]


def test_a_study_that_evaluated_refuses_another_interval(tmp_path: Path) -> None:
    config = load_study(str(_study(tmp_path, "eval_every = 96")))
    url = f"sqlite:///{tmp_path}/s.db"
    storage = prepare_study(config, url)
    assert interval.resolve(config, url, storage, ["cpu"], 1).eval_every == 96
    other = load_study(str(study_toml(tmp_path, "eval_every = 128")))
    assert interval.resolve(other, url, storage, ["cpu"], 1).eval_every == 128  # none evaluated
    study = optuna.load_study(study_name="tiny", storage=url)
    trial = study.ask()
    trial.report(0.6, 1)
    with pytest.raises(ConfigError, match="evaluates every 128 training sequences"):
        interval.resolve(config, url, storage, ["cpu"], 1)
    per_epoch = load_study(str(study_toml(tmp_path, "")))
    with pytest.raises(ConfigError, match="eval_every = epoch would compare"):
        interval.resolve(per_epoch, url, storage, ["cpu"], 1)
    auto = load_study(str(study_toml(tmp_path, 'eval_every = "auto"')))
    assert interval.resolve(auto, url, storage, ["cpu"], 1).eval_every == 128


def test_auto_times_the_reference_as_its_trial_trains_it(tmp_path: Path) -> None:
    reference = ('enqueue = [{label = "ref", conv_filters = [10, 6], conv_filter_sizes = [5, 3], '
                 'pool_width = [3, 2], hidden_units = [16], learning_rate = 0.005, '
                 'batch_size = 32}]')
    config = load_study(str(_study(tmp_path, f'eval_every = "auto"\n{reference}\n'
                                   'padding = "paper"')))
    label, params = interval.timed_params(config, 60)
    assert label == "ref" and params.conv_filters == [10, 6] and params.hidden_units == [16]
    assert params.padding == "paper" and params.learning_rate == 0.005
    label, params = interval.timed_params(load_study(str(study_toml(tmp_path, ""))), 60)
    assert label == "the space's largest" and params.conv_filters == [12, 12]


@pytest.mark.slow  # a spawned process that imports torch and trains for TIMING_S
def test_time_reference_measures_in_a_child_process(tmp_path: Path) -> None:
    config = load_study(str(_study(tmp_path, 'eval_every = "auto"')))
    label, rate = interval.time_reference(config, "cpu", 1)
    assert label == "the space's largest" and 10 < rate < 1e6


def test_with_eval_subset_the_value_is_the_best_model_on_the_whole_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    config = load_study(str(_study(tmp_path, "eval_every = 64\neval_subset = 20\n"
                                   "max_epochs = 4\nstagnant_t = 4")))
    url = f"sqlite:///{tmp_path}/s.db"
    prepare_study(config, url)
    plan = RunPlan(config=config, url=url, n_trials=1, devices=["cpu"], threads=1)
    run_trials(plan, 0)
    trial = optuna.load_study(study_name="tiny", storage=url).trials[0]
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["best_subset_auroc"] == max(trial.intermediate_values.values())
    assert trial.user_attrs["valid_rows"] == 50
    full = validate_checkpoint(trial.user_attrs["best_checkpoint"], load_data(config.data))
    assert trial.value == full.metric != trial.user_attrs["best_subset_auroc"]
    argv = trial.user_attrs["train_command"].split()
    assert argv[argv.index("--valid-subset") + 1] == "20"


def test_the_slurm_lead_covers_three_auto_intervals() -> None:
    assert slurm.stop_lead(None, None, 60.0) == 120 + 180
    assert slurm.stop_lead("00:08:00", None, 60.0) == 240  # at most half the limit
    assert slurm.stop_lead(None, 200_000, None) == 120 + 200
