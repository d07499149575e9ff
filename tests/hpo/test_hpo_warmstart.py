"""`run --warm-start STUDY`: the source's history copied where the spaces agree, its best
configurations enqueued after the references, copies outside the budget and the best."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from hpo import progress
from hpo.cli import main
from hpo.config import load_study
from hpo.errors import ConfigError
from hpo.evaluate import top_trials
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import TINY_SPACE, scripted_train, study_toml

ONE_LAYER = {"num_conv": IntDistribution(1, 2), "conv_filters_0": IntDistribution(4, 12),
             "conv_filter_sizes_0": IntDistribution(3, 9), "pool_width_0": IntDistribution(2, 4),
             "num_hidden": IntDistribution(0, 1),
             "learning_rate": FloatDistribution(1e-3, 3e-2, log=True)}
REF = ("{conv_filters = [4], conv_filter_sizes = [5], pool_width = [2], hidden_units = [16], "
       "batch_size = 32, learning_rate = 0.01}")


def _params(filters: int, lr: float = 0.01) -> dict[str, float]:
    return {"num_conv": 1, "conv_filters_0": filters, "conv_filter_sizes_0": 5, "pool_width_0": 2,
            "num_hidden": 0, "learning_rate": lr}


def _source(url: str) -> optuna.Study:
    """A finished study 'old': three complete, one pruned, one failed, one outside the space."""
    study = optuna.create_study(study_name="old", storage=url, direction="maximize")
    for filters, value in ((5, 0.70), (6, 0.90), (7, 0.80), (8, 0.85)):
        study.add_trial(create_trial(value=value, params=_params(filters),
                                     distributions=ONE_LAYER, intermediate_values={1: value}))
    study.add_trial(create_trial(state=TrialState.PRUNED, params=_params(9),
                                 distributions=ONE_LAYER, intermediate_values={1: 0.5}))
    study.add_trial(create_trial(state=TrialState.FAIL, params=_params(10),
                                 distributions=ONE_LAYER))
    wide = {**ONE_LAYER, "learning_rate": FloatDistribution(1e-4, 1e-1, log=True)}
    study.add_trial(create_trial(value=0.99, params=_params(11, lr=0.05), distributions=wide))
    return study


def _new_study(tmp_path: Path, url: str) -> optuna.Study:
    config = load_study(str(study_toml(tmp_path, f"enqueue = [{REF}]", name="new")))
    prepare_study(config.__class__(**{**config.__dict__, "warm_start": "old"}), url)
    return optuna.load_study(study_name="new", storage=url)


def test_history_is_copied_where_the_spaces_agree_and_the_best_are_enqueued(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    _source(url)
    trials = _new_study(tmp_path, url).trials
    copied = [t for t in trials if progress.copied(t)]
    # 4 complete and 1 pruned agree; the failed one and the one from a wider lr range do not.
    assert [t.user_attrs[progress.WARM_START] for t in copied] == [
        "old#0", "old#1", "old#2", "old#3", "old#4"]
    assert [t.state for t in copied] == [TrialState.COMPLETE] * 4 + [TrialState.PRUNED]
    assert [t.value for t in copied] == [0.70, 0.90, 0.80, 0.85, None]
    assert copied[4].intermediate_values == {1: 0.5}
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert waiting[0].user_attrs["reference"] == "enqueue[0]"  # the reference first
    # then the source's three best (trial 6 too: its params that fit are enqueued)
    assert [t.user_attrs["warm_start_config"] for t in waiting[1:]] == ["old#6", "old#1", "old#3"]
    assert progress.counted(trials) == 0  # copies use up no --n-trials


def test_copies_are_neither_counted_nor_the_best(tmp_path: Path, tiny_h5: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    _source(url)
    study = _new_study(tmp_path, url)
    config = load_study(str(study_toml(tmp_path, f"enqueue = [{REF}]", name="new")))
    curves = {f: [0.6, 0.65] for f in range(4, 13)}
    plan = RunPlan(config=config, url=url, n_trials=5, devices=["cpu"], threads=1,
                   train_fn=scripted_train(curves))
    assert run_trials(plan, 0) == 5
    trials = study.trials
    trained = [t for t in trials if not progress.copied(t)]
    assert len(trained) == 5 and all(t.state == TrialState.COMPLETE for t in trained)
    assert [t.user_attrs.get("warm_start_config") for t in trained[:4]] == [
        None, "old#6", "old#1", "old#3"]
    # lr 0.05 is outside the new [1e-3, 3e-2]: trial 6's other params, the lr sampled
    assert trained[1].params["conv_filters_0"] == 11
    assert 1e-3 <= trained[1].params["learning_rate"] <= 3e-2
    assert trained[2].params == _params(6) and trained[3].params == _params(8)
    snap = progress.snapshot(optuna.storages.get_storage(url), "new")
    assert snap.counted == 5 and snap.best is not None and snap.best.value == 0.65
    assert not progress.copied(top_trials(trials, 1)[0])


def test_a_missing_source_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    _source(url)
    config = load_study(str(study_toml(tmp_path, name="new")))
    with pytest.raises(ConfigError, match=r"--warm-start nope: no such study in the storage "
                                          r"\(it holds: old\)"):
        prepare_study(config.__class__(**{**config.__dict__, "warm_start": "nope"}), url)
    with pytest.raises(ConfigError, match="cannot warm-start from itself"):
        prepare_study(config.__class__(**{**config.__dict__, "warm_start": "new"}), url)


def test_the_run_command_takes_warm_start(tmp_path: Path, tiny_h5: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = study_toml(tmp_path, name="new", space=TINY_SPACE)
    assert main(["run", "--study", str(path), "--storage", f"sqlite:///{tmp_path}/s.db",
                 "--warm-start", "missing", "-q"]) == 2
    assert "--warm-start missing: no such study" in capsys.readouterr().err
