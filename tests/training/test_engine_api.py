"""What another engine drives basset with: flat configurations -> JobParams, the stop rule seen
by hooks, scoring a checkpoint, and runs that keep their random state to themselves."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from basset import (
    EpochMetrics,
    ParamsError,
    TrainHooks,
    TrainOptions,
    params_from_flat,
    score_checkpoint,
    train,
)
from basset.nn.model import conv_lengths
from synth_data import make_data, one_thread

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

FLAT = {
    "num_conv": 2,
    "conv_filters_0": 8,
    "conv_filters_1": 6,
    "conv_filters_2": 99,  # layer 3: unused
    "conv_filter_sizes_0": 5,
    "conv_filter_sizes_1": 3,
    "pool_width_0": 2,
    "last_pool_width": "global",
    "conv_dropouts_0": 0.1,
    "conv_dropouts_1": 0.2,
    "num_hidden": 1,
    "hidden_units_0": 16,
    "hidden_units_1": 500,
    "hidden_dropouts_0": 0.3,
    "batch_size": 32,
    "learning_rate": 0.01,
    "weight_norm": 2.0,
    "rc": True,
}


def test_a_flat_configuration_becomes_its_params() -> None:
    params = params_from_flat(FLAT, padding="paper", seq_len=50).validate()
    assert params.conv_filters == [8, 6]
    assert params.conv_filter_sizes == [5, 3]
    assert params.conv_dropouts == [0.1, 0.2]
    assert params.hidden_units == [16] and params.hidden_dropouts == [0.3]
    assert params.padding == "paper" and params.batch_size == 32
    # paper padding: 50 -> conv 5 -> 46 -> pool 2 -> 23 -> conv 3 -> 21: one global pool of 21
    assert params.pool_width == [2, 21]
    probe = params_from_flat({**FLAT, "last_pool_width": 1}, padding="paper")
    assert conv_lengths(probe, 50)[-1][0] == 21


def test_whole_lists_and_one_value_for_every_layer() -> None:
    params = params_from_flat({"conv_filters": [4, 5, 6], "conv_filter_sizes": 3,
                               "pool_width": 2, "num_hidden": 0})
    assert params.conv_filter_sizes == [3, 3, 3] and params.pool_width == [2, 2, 2]
    assert params.hidden_units == []


def test_unknown_names_and_missing_layers_are_refused() -> None:
    with pytest.raises(ParamsError, match="unknown parameter 'conv_filterz_0'"):
        params_from_flat({**FLAT, "conv_filterz_0": 3})
    missing = {k: v for k, v in FLAT.items() if k != "conv_filter_sizes_1"}
    with pytest.raises(ParamsError, match="conv_filter_sizes: no value for conv_filter_sizes_1"):
        params_from_flat(missing)


def _params():  # type: ignore[no-untyped-def]
    return params_from_flat({**FLAT, "last_pool_width": 2}, seq_len=50).validate()


def test_hooks_see_the_trainers_own_stop_reason() -> None:
    seen: list[EpochMetrics] = []
    result = train(_params(), make_data(), options=TrainOptions(max_epochs=3, quiet=True),
                   hooks=TrainHooks(on_epoch_end=seen.append))
    assert [m.stop_reason for m in seen] == [None, None, "max_epochs"]
    assert result.stop_reason == "max_epochs"
    seen.clear()
    result = train(_params(), make_data(), options=TrainOptions(max_epochs=50, stagnant_t=0,
                                                                quiet=True),
                   hooks=TrainHooks(on_epoch_end=seen.append))
    assert result.stop_reason == "stagnant"
    assert seen[-1].stop_reason == "stagnant"
    assert all(m.stop_reason is None for m in seen[:-1])


def test_scoring_a_checkpoint_gives_the_trainers_validation_auroc(tmp_path: Path) -> None:
    data = make_data()
    result = train(_params(), data, options=TrainOptions(max_epochs=2, quiet=True,
                                                         save_prefix=tmp_path / "run"))
    assert result.best_path is not None
    valid = score_checkpoint(result.best_path, data, split="valid")
    assert valid.auroc == pytest.approx(result.best_metric, abs=1e-6)
    assert valid.target_auroc == pytest.approx(result.best_target_metric, abs=1e-6)
    test = score_checkpoint(result.best_path, data)
    assert test.split == "test" and len(test.target_auroc) == data.num_targets
    assert 0.5 < test.auroc <= 1.0


def _run(rand: int) -> list[float]:
    result = train(_params(), make_data(), options=TrainOptions(max_epochs=2, rand=rand,
                                                                quiet=True))
    return [m.train_loss for m in result.history]


def test_runs_keep_their_random_state_to_themselves() -> None:
    before = torch.get_rng_state()
    alone = _run(3)
    assert torch.equal(torch.get_rng_state(), before), "train() moved the process-wide RNG"
    assert _run(3) == alone
    assert _run(4) != alone
    results: dict[int, list[float]] = {}

    def in_thread(key: int, rand: int) -> None:
        torch.manual_seed(key)  # whatever else the process does with the global RNG
        results[key] = _run(rand)

    threads = [threading.Thread(target=in_thread, args=(k, 3)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == alone and results[1] == alone


def test_a_generator_builds_the_same_net_without_touching_the_global_rng() -> None:
    from basset.nn.model import build_model

    params = params_from_flat({**FLAT, "last_pool": "soft", "last_pool_width": 2})
    before = torch.get_rng_state()
    nets = [build_model(params, 50, 2, generator=torch.Generator().manual_seed(5))
            for _ in range(2)]
    assert torch.equal(torch.get_rng_state(), before)
    for (name, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values(),
                            strict=True):
        assert torch.isfinite(a.float()).all(), name
        assert torch.equal(a, b), name
    first = nets[0].first_conv.weight
    assert first.abs().max() <= 1 / (4 * 5) ** 0.5  # Kaiming uniform, a = sqrt(5): 1/sqrt(fan_in)
    assert first.std() > 0.05
    norm = nets[0].conv[0][1]
    assert torch.equal(norm.running_var, torch.ones(8)) and torch.equal(norm.weight, torch.ones(8))
