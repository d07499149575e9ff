"""The asha pruner's decisions on synthetic curves: exact prune/keep, rung by rung."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState, create_trial

from hpo.config import load_study
from hpo.progress import REFERENCE, WARM_START
from hpo.pruning import RungPruner, make_pruner, rungs
from hpo_testutil import study_toml


def _curve(values: list[float], state: TrialState = TrialState.COMPLETE,
           attrs: dict[str, str] | None = None) -> FrozenTrial:
    """A trial that reported `values` at steps 1, 2, ..."""
    steps = {step: v for step, v in enumerate(values, start=1)}
    value = max(values) if state == TrialState.COMPLETE else None
    return create_trial(state=state, value=value, intermediate_values=steps,
                        user_attrs=attrs or {})


def _judge(peers: list[FrozenTrial], values: list[float], max_epochs: int = 10,
           attrs: dict[str, str] | None = None) -> bool:
    """Would a running trial that reported `values` (with user `attrs`) be pruned after its
    last one?"""
    study = optuna.create_study(direction="maximize")
    for peer in peers:
        study.add_trial(peer)
    pruner = RungPruner(min_resource=1, reduction_factor=3, max_resource=max_epochs)
    return pruner.prune(study, _curve(values, TrialState.RUNNING, attrs))


def test_rungs_are_geometric_below_the_last_epoch() -> None:
    assert rungs(1, 3, 10) == [1, 3, 9]
    assert rungs(1, 3, 30) == [1, 3, 9, 27]
    assert rungs(2, 3, 10) == [2, 6]
    assert rungs(1, 3, 9) == [1, 3]


def test_a_rising_curve_well_below_its_rung_is_pruned() -> None:
    # The case: gaining 0.06 every epoch, but 0.72 at epoch 3 where the others had
    # 0.80-0.84 (cut-off: their 2/3 quantile, 0.8267).
    peers = [_curve([0.70, 0.76, 0.80, 0.81]), _curve([0.72, 0.78, 0.82]),
             _curve([0.74, 0.80, 0.84, 0.85])]
    assert _judge(peers, [0.60, 0.66, 0.72])
    assert _judge(peers, [0.60, 0.66, 0.72, 0.78])  # between rungs: still judged at epoch 3
    assert not _judge(peers, [0.60, 0.70, 0.83])


def test_the_cut_off_is_the_peers_upper_third() -> None:
    peers = [_curve([0.7]), _curve([0.8])]  # at epoch 1: 0.7 + 2/3 * 0.1 = 0.7667
    assert not _judge(peers, [0.77])
    assert _judge(peers, [0.76])
    assert not _judge([_curve([0.7])], [0.7])  # one peer: at least as good as it


def test_a_trial_without_peers_goes_on_until_peers_pass_it() -> None:
    assert not _judge([], [0.5, 0.55, 0.6, 0.62, 0.63])
    # The first trial (the reference) at epoch 2, judged at epoch 1 against a trial that
    # reached epoch 1 since: pruned if below it, kept if above.
    assert _judge([_curve([0.7], TrialState.RUNNING)], [0.5, 0.6])
    assert not _judge([_curve([0.45], TrialState.RUNNING)], [0.5, 0.6])


def test_the_best_value_up_to_the_rung_is_compared() -> None:
    # A dip at epoch 3 does not count against a trial that stood at 0.9 at epoch 2; a peer's
    # later epochs (after the rung) do not count for it.
    peers = [_curve([0.8, 0.85, 0.86, 0.99])]
    assert not _judge(peers, [0.8, 0.9, 0.7])
    assert _judge(peers, [0.8, 0.84, 0.85])


def test_a_reference_is_judged_from_the_second_rung_on() -> None:
    peers = [_curve([0.97, 0.98, 0.99, 0.99]), _curve([0.96, 0.985, 0.988, 0.99])]
    reference = {REFERENCE: "small-data"}
    slow_start = [0.90, 0.95]  # at epoch 1 below both peers, who stood at 0.96-0.97
    assert _judge(peers, slow_start)
    assert not _judge(peers, slow_start, attrs=reference)
    # At epoch 3 it is judged like any trial: below the cut-off (0.9893) it is pruned.
    assert _judge(peers, [0.90, 0.95, 0.98], attrs=reference)
    assert not _judge(peers, [0.90, 0.95, 0.99], attrs=reference)
    # Its own values are peers at every rung: 0.99 at epoch 1 raises the first rung's cut-off.
    assert _judge([*peers, _curve([0.99], TrialState.RUNNING, reference)], [0.968])
    assert not _judge(peers, [0.968])
    # With a single rung a reference is never pruned.
    assert not _judge(peers, [0.5, 0.5, 0.5], max_epochs=3, attrs=reference)


def test_failed_copied_and_shorter_trials_are_not_peers() -> None:
    strong = [0.95, 0.96, 0.97]
    ignored = [
        _curve(strong, TrialState.FAIL),
        _curve(strong, attrs={WARM_START: "other#3"}),
        _curve([0.95, 0.96]),  # never reached epoch 3
    ]
    assert not _judge(ignored, [0.5, 0.6, 0.7])
    assert _judge([*ignored, _curve(strong, TrialState.PRUNED)], [0.5, 0.6, 0.7])


def test_before_the_first_rung_nothing_is_pruned() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(_curve([0.9, 0.9, 0.9, 0.9]))
    pruner = RungPruner(min_resource=2, reduction_factor=3, max_resource=10)
    assert not pruner.prune(study, _curve([0.1], TrialState.RUNNING))
    assert pruner.prune(study, _curve([0.1, 0.2], TrialState.RUNNING))


def test_asha_from_a_study_file(tmp_path: Path) -> None:
    config = load_study(str(study_toml(tmp_path, "max_epochs = 10",
                                       pruner='type = "asha"\nmin_resource = 1')))
    pruner = make_pruner(config)
    assert isinstance(pruner, RungPruner) and pruner.rungs == [1, 3, 9]
    assert pruner.reduction_factor == 3


@pytest.mark.parametrize("name", ["demo", "dnase"])
def test_the_packaged_studies_prune_with_asha_from_the_first_epoch(name: str) -> None:
    config = load_study(name)
    assert config.pruner.type == "asha" and config.pruner.min_resource == 1
    assert config.pruner.reduction_factor == 3 and config.pruner.keep_rising == 0
    # pruned trials count towards TPE's start-up, and with two workers or more each steers
    # away from the others' running trials (Optuna 4.9 and 5 alike: set explicitly)
    sampler = config.sampler
    assert sampler.type == "tpe" and sampler.multivariate and sampler.group
    assert sampler.constant_liar
    assert sampler.n_startup_trials == {"demo": 5, "dnase": 10}[name]
