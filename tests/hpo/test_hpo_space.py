"""Search space -> JobParams: conditional per-layer keys, references, invalid graphs never
trained."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from basset.params import parse_params, pretrained_params
from hpo.config import load_study
from hpo.objective import TrialContext, make_objective
from hpo.space import (
    Reference,
    check_space,
    reference_values,
    suggest_params,
    suggest_training,
)
from hpo.storage import make_engine
from hpo_testutil import TINY_SPACE, study_toml, tiny_data


def test_layer_counts_decide_which_per_layer_keys_exist(tmp_path: Path) -> None:
    config = load_study(str(study_toml(tmp_path)))
    one = {"num_conv": 1, "conv_filters_0": 6, "conv_filter_sizes_0": 5, "pool_width_0": 2,
           "num_hidden": 0, "learning_rate": 0.01}
    params = suggest_params(FixedTrial(one), config, 60)
    assert params.conv_filters == [6] and params.pool_width == [2] and params.hidden_units == []
    assert params.batch_size == 32 and params.padding == "same"  # fixed key, study padding
    two = one | {"num_conv": 2, "conv_filters_1": 12, "conv_filter_sizes_1": 3, "pool_width_1": 4,
                 "num_hidden": 1, "hidden_units_0": 20}
    params = suggest_params(FixedTrial(two), config, 60)
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
        params = suggest_params(trial, config, 60)
        convs = {k for k in trial.params if k.startswith("conv_filters_")}
        assert len(convs) == params.num_conv == trial.params["num_conv"]
        assert len(params.hidden_units) == trial.params["num_hidden"]
        study.tell(trial, 0.5)


def test_the_pretrained_reference_is_reproduced_exactly() -> None:
    config = load_study("dnase")
    params = suggest_params(FixedTrial(reference_values(config, config.enqueue[0])), config, 600)
    assert params == dataclasses.replace(pretrained_params(), padding=config.padding)


def test_a_reference_can_pool_globally_and_train_with_rc(tmp_path: Path) -> None:
    # A params table can say neither: the enqueue table's last_pool_width and rc carry them.
    space = TINY_SPACE.replace("[fixed]", 'last_pool_width = { choices = [2, "global"] }\n'
                               "rc = { choices = [false, true] }\n[fixed]")
    top = ('enqueue = [{ label = "flat", conv_filters = [8, 6], conv_filter_sizes = [5, 3], '
           'pool_width = [2], last_pool_width = "global", hidden_units = [16], batch_size = 32, '
           'rc = true }, { label = "four", conv_filters = [8], conv_filter_sizes = [5], '
           "last_pool_width = 2, hidden_units = [16], batch_size = 32 }]")
    config = load_study(str(study_toml(tmp_path, top, space=space)))
    flat, four = (reference_values(config, ref) for ref in config.enqueue)
    assert flat["last_pool_width"] == "global" and flat["rc"] is True
    assert four["last_pool_width"] == 2 and four["rc"] is False
    params = suggest_params(FixedTrial(flat), config, 60)
    # "same" padding: 60 bp, pooled by 2 after the first layer, 30 positions in one window
    assert params.conv_filters == [8, 6] and params.pool_width == [2, 30]
    assert suggest_training(FixedTrial(flat), config) == {"rc": True}
    assert suggest_params(FixedTrial(four), config, 60).pool_width == [2]


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
    from basset.nn.model import check_architecture

    config = load_study(study_name)
    seq_len = 200 if study_name == "demo" else 600
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(50):
        trial = study.ask()
        check_architecture(suggest_params(trial, config, seq_len), seq_len)  # raises if not
        study.tell(trial, 0.5)


GLOBAL_SPACE = """
[space]
num_conv = [1, 3]
conv_filters_0 = [8, 16]
conv_filters = [4, 6]
conv_filter_sizes = [3, 7]
pool_width = [2, 3]
last_pool_width = { choices = [2, "global"] }
last_pool = { choices = ["max", "soft"] }
num_hidden = [0, 1]
hidden_units = [8, 24]
learning_rate = { low = 1e-3, high = 3e-2, log = true }

[fixed]
batch_size = 32
"""


@pytest.mark.parametrize("last_pool", ["max", "soft"])
def test_global_pooling_resolves_to_one_position_and_the_table_is_plain(
        tmp_path: Path, tiny_h5: Path, last_pool: str) -> None:
    from basset.cli import train as basset_cli
    from basset.nn.model import build_model, check_architecture
    from basset.training.checkpoint import load_model

    config = load_study(str(study_toml(tmp_path, space=GLOBAL_SPACE)))
    values = {"num_conv": 2, "conv_filters_0": 12, "conv_filters_1": 5, "conv_filter_sizes_0": 7,
              "conv_filter_sizes_1": 3, "pool_width_0": 3, "last_pool_width": "global",
              "last_pool": last_pool, "num_hidden": 1, "hidden_units_0": 10,
              "learning_rate": 0.01}
    params = suggest_params(FixedTrial(values), config, 60)
    assert params.last_pool == last_pool
    assert params.pool_width == [3, 20]  # 60 bp -> pool 3 -> 20 positions -> all of them
    assert check_architecture(params, 60) == 5 * 1  # flatten: last layer's filters x 1
    assert parse_params(params.to_table()) == params  # no "global" in the table
    # The table trains as a plain -job file into the same network (same parameter count).
    job = tmp_path / "job.txt"
    job.write_text(params.to_table())
    data = tiny_h5
    assert basset_cli.train_main(["-job", str(job), "-max_epochs", "1", "-save",
                                  str(tmp_path / "m"), str(data), "-q"]) == 0
    trained = load_model(tmp_path / "m_best.pt").model
    count = sum(p.numel() for p in build_model(params, 60, 3).parameters())
    assert sum(p.numel() for p in trained.parameters()) == count
    assert trained.flatten_size == 5
    # Paper padding: the last convolution's own output length is pooled.
    paper = load_study(str(study_toml(tmp_path, 'padding = "paper"', space=GLOBAL_SPACE)))
    params = suggest_params(FixedTrial(values), paper, 60)
    assert params.pool_width == [3, 16]  # 60 - 6 = 54 -> 18 -> 18 - 2 = 16


def test_one_layer_ranges_and_the_last_pool_exist_only_for_existing_layers(tmp_path: Path) -> None:
    config = load_study(str(study_toml(tmp_path, space=GLOBAL_SPACE)))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = suggest_params(trial, config, 60)
        n = params.num_conv
        pools = {k for k in trial.params if k.startswith("pool_width_")}
        assert pools == {f"pool_width_{i}" for i in range(n - 1)}  # the last has its own key
        assert "last_pool_width" in trial.params
        assert {k for k in trial.params if k.startswith("conv_filters_")} == {
            f"conv_filters_{i}" for i in range(n)}
        assert 8 <= params.conv_filters[0] <= 16 and all(
            4 <= f <= 6 for f in params.conv_filters[1:]
        )
        assert params.pool_width[-1] in (2, check_global(params))
        seen.add(n)
        study.tell(trial, 0.5)
    assert seen == {1, 2, 3}


def check_global(params) -> int:  # type: ignore[no-untyped-def]
    """The width a global last pool takes: the positions the earlier pools leave (same padding)."""
    length = 60
    for pool in params.pool_width[:-1]:
        length = -(-length // pool)
    return length


@pytest.mark.parametrize("study_name", ["demo", "dnase"])
def test_the_packaged_spaces_hold_the_paper_and_the_small_data_shapes(study_name: str) -> None:
    config = load_study(study_name)  # loading checks that the paper's reference is in the space
    assert config.enqueue[0].params.num_conv == 3 and config.enqueue[0].params.num_hidden == 2
    assert "global" in config.space["last_pool_width"].choices
    assert config.space["last_pool"].choices == ("max", "soft")
    assert config.enqueue[0].params.last_pool == "max"  # Basset's pooling
    # One wide conv layer with dropout and one small hidden layer (pool 4 here: "global" is a
    # choice of its own) is in the space too: check_space refuses a reference outside it.
    small = dataclasses.replace(
        config.enqueue[0].params, conv_filters=[128], conv_filter_sizes=[19], pool_width=[4],
        conv_dropouts=[0.2], hidden_units=[64], hidden_dropouts=[0.3], learning_rate=0.004,
        batch_size=128, optimization="adam")
    check_space(config, [Reference("small-data", small)])
