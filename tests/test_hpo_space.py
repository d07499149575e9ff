"""Search space -> JobParams: conditional per-layer keys, references, invalid graphs never trained."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from basset.params import parse_params, pretrained_params
from hpo.config import load_study
from hpo.objective import TrialContext, make_objective
from hpo.space import reference_values, suggest_params
from hpo.storage import make_engine
from hpo_testutil import TINY_SPACE, study_toml, tiny_data


def test_layer_counts_decide_which_per_layer_keys_exist(tmp_path: Path) -> None:
    config = load_study(str(study_toml(tmp_path)))
    one = {"num_conv": 1, "conv_filters_0": 6, "conv_filter_sizes_0": 5, "pool_width_0": 2,
           "num_hidden": 0, "learning_rate": 0.01}
    params = suggest_params(FixedTrial(one), config)
    assert params.conv_filters == [6] and params.pool_width == [2] and params.hidden_units == []
    assert params.batch_size == 32 and params.padding == "same"  # fixed key, study padding
    two = one | {"num_conv": 2, "conv_filters_1": 12, "conv_filter_sizes_1": 3, "pool_width_1": 4,
                 "num_hidden": 1, "hidden_units_0": 20}
    params = suggest_params(FixedTrial(two), config)
    assert params.conv_filters == [6, 12] and params.conv_filter_sizes == [5, 3]
    assert params.pool_width == [2, 4] and params.hidden_units == [20]
    assert params.conv_dropouts == [0.0, 0.0] and params.hidden_dropouts == [0.0]
    # The stored params table reads back to the same JobParams (basset-train -job can rerun it).
    assert parse_params(params.to_table()) == params


def test_sampled_trials_only_carry_the_keys_of_their_layers(tmp_path: Path) -> None:
    config = load_study(str(study_toml(tmp_path)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        params = suggest_params(trial, config)
        convs = {k for k in trial.params if k.startswith("conv_filters_")}
        assert len(convs) == params.num_conv == trial.params["num_conv"]
        assert len(params.hidden_units) == trial.params["num_hidden"]
        study.tell(trial, 0.5)


def test_the_pretrained_reference_is_reproduced_exactly() -> None:
    config = load_study("dnase")
    params = suggest_params(FixedTrial(reference_values(config, config.enqueue[0])), config)
    assert params == dataclasses.replace(pretrained_params(), padding=config.padding)


def test_an_invalid_architecture_never_reaches_the_trainer(tmp_path: Path) -> None:
    # Unpadded 21 bp filters twice over 60 bp, with pools of 4: nothing is left after layer 2.
    space = TINY_SPACE.replace('conv_filter_sizes = [3, 9]', 'conv_filter_sizes = [3, 21]')
    config = load_study(str(study_toml(tmp_path, 'padding = "paper"', space=space)))
    calls = []
    ctx = TrialContext(config=config, data=tiny_data(), device="cpu", run_dir=tmp_path,
                       engine=make_engine(f"sqlite:///{tmp_path}/t.db"),
                       train_fn=lambda *a, **k: calls.append(a))
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"num_conv": 2, "conv_filters_0": 4, "conv_filters_1": 4,
                         "conv_filter_sizes_0": 21, "conv_filter_sizes_1": 21,
                         "pool_width_0": 4, "pool_width_1": 4, "num_hidden": 0,
                         "learning_rate": 0.01})
    study.optimize(make_objective(ctx), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED and calls == []
    assert "conv layer 2" in trial.user_attrs["invalid_architecture"]
    assert "conv_filter_sizes\t21" in trial.user_attrs["params_table"]


@pytest.mark.parametrize("study_name", ["demo", "dnase"])
def test_every_corner_of_the_packaged_spaces_is_buildable(study_name: str) -> None:
    from basset.model import check_architecture

    config = load_study(study_name)
    seq_len = 200 if study_name == "demo" else 600
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(50):
        trial = study.ask()
        check_architecture(suggest_params(trial, config), seq_len)  # raises if not
        study.tell(trial, 0.5)
