"""How trials end (COMPLETE / PRUNED / FAIL), what they store, and the per-epoch table.

These run one worker loop in this process (hpo.workers.run_trials) on a tiny SQLite study.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from basset import TrainResult, train
from basset.training.checkpoint import load_model
from hpo import service_tables
from hpo.config import load_study
from hpo.objective import TrialContext, TrialFailed, make_objective
from hpo.space import reference_values
from hpo.storage import make_engine
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import (
    TINY_SPACE,
    diverging_train,
    scripted_train,
    study_toml,
    tiny_data,
    write_h5,
)
from synth_data import make_data

REF = "conv_filter_sizes = [5], pool_width = [2], hidden_units = [16], batch_size = 32"


def _run(tmp_path: Path, top: str, n_trials: int, train_fn=None, device: str = "cpu",  # type: ignore[no-untyped-def]
         references: int | None = None, **parts):
    """Run `n_trials` of the tiny study; with `references`, only the first that many enqueue
    entries are references, the rest are enqueued as plain trials (judged as sampled ones)."""
    config = load_study(str(study_toml(tmp_path, top, **parts)))
    plain = []
    if references is not None:
        plain = [reference_values(config, ref) for ref in config.enqueue[references:]]
        config = replace(config, enqueue=config.enqueue[:references])
    url = f"sqlite:///{tmp_path}/studies/tiny.db"
    prepare_study(config, url)
    if plain:
        study = optuna.load_study(study_name="tiny", storage=url)
        for values in plain:
            study.enqueue_trial(values)
    plan = RunPlan(config=config, url=url, n_trials=n_trials, devices=[device], threads=1,
                   train_fn=train_fn)
    ran = run_trials(plan, 0)
    study = optuna.load_study(study_name="tiny", storage=url)
    return ran, study, make_engine(url)


def test_stagnating_trial_completes_and_hopeless_one_is_pruned(
    tmp_path: Path, tiny_h5: Path
) -> None:
    curves = {
        4: [0.6, 0.7, 0.8, 0.85, 0.86, 0.87],  # keeps improving: runs to max_epochs
        5: [0.7, 0.9, 0.88, 0.87, 0.86, 0.85],  # best at epoch 2, then stagnates
        6: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # worse than the median at epoch 1
    }
    enqueue = ", ".join(f"{{conv_filters = [{f}], {REF}, learning_rate = 0.01}}" for f in curves)
    ran, study, engine = _run(
        tmp_path, f"max_epochs = 6\nenqueue = [{enqueue}]", 3, scripted_train(curves),
        pruner='type = "median"\nn_startup_trials = 1\nn_warmup_steps = 0\nn_min_trials = 1',
    )
    full, stagnant, hopeless = study.trials
    assert ran == 3
    assert full.state == TrialState.COMPLETE and full.value == 0.87
    assert full.user_attrs["stop_reason"] == "max_epochs"
    assert stagnant.state == TrialState.COMPLETE and stagnant.value == 0.9
    assert stagnant.user_attrs["stop_reason"] == "stagnant"
    assert stagnant.user_attrs["epochs_run"] == 4 and stagnant.user_attrs["best_epoch"] == 2
    assert stagnant.user_attrs["best_target_auroc"] == [0.9, None, 0.9]
    assert hopeless.state == TrialState.PRUNED
    assert hopeless.user_attrs["pruned_at_epoch"] == 1
    assert hopeless.intermediate_values == {1: 0.5}
    rows = service_tables.read_epochs(engine, "tiny")
    assert len(rows) == 6 + 4 + 1
    assert [r["valid_auroc"] for r in rows if r["trial_number"] == 1] == curves[5][:4]


def test_a_diverging_trial_fails_alone_and_the_worker_goes_on(
    tmp_path: Path, tiny_h5: Path
) -> None:
    enqueue = ", ".join(
        f'{{label = "lr{lr}", conv_filters = [8], {REF}, learning_rate = {lr}}}'
        for lr in (0.02, 0.005)
    )
    ran, study, engine = _run(tmp_path, f"enqueue = [{enqueue}]", 2, diverging_train)
    assert ran == 2 and len(study.trials) == 2
    diverged, trained = study.trials
    assert diverged.user_attrs["reference"] == "lr0.02"  # the enqueued trials come first
    assert diverged.state == TrialState.FAIL
    assert diverged.user_attrs["fail_reason"].startswith("diverged: the training loss is nan")
    assert trained.state == TrialState.COMPLETE and trained.params["learning_rate"] == 0.005
    assert 0.0 <= trained.value <= 1.0
    assert study.user_attrs["target_labels"] == ["t0", "t1", "t2"]
    assert len(trained.user_attrs["best_target_auroc"]) == 3
    best = Path(trained.user_attrs["best_checkpoint"])
    assert best.parent == tmp_path / "studies" / "tiny" / "trial_1"
    assert load_model(best).params.learning_rate == 0.005
    # One epoch row per reported epoch, over all trials (the failed one reported epoch 1).
    rows = service_tables.read_epochs(engine, "tiny")
    assert len(rows) == sum(len(t.intermediate_values) for t in study.trials)
    assert {r["device"] for r in rows} == {"cpu"}
    assert sum(r["trial_number"] == 1 for r in rows) == trained.user_attrs["epochs_run"]


@pytest.mark.gpu
def test_a_real_cuda_out_of_memory_fails_its_trial_and_the_worker_goes_on(tmp_path: Path) -> None:
    trained: list[int] = []

    def first_without_memory(*args: object, **kwargs: object) -> TrainResult:
        # The first trial may not add a byte to what the process holds (a 1e-6 share of the
        # card), so its first batch's activations (batch 512 x 600 bp: megabytes) cannot be
        # allocated; the second one trains normally.
        trained.append(1)
        if len(trained) == 1:
            torch.cuda.empty_cache()
            torch.cuda.set_per_process_memory_fraction(1e-6)
        try:
            return train(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0)

    data = write_h5(tmp_path / "wide.h5", make_data(n_train=1024, n_valid=64, seq_len=600,
                                                    num_targets=3))
    ref = ("conv_filter_sizes = [5], pool_width = [2], hidden_units = [16], learning_rate = 0.005, "
           "batch_size = 512")
    enqueue = ", ".join(f"{{conv_filters = [{f}], {ref}}}" for f in (12, 8))
    ran, study, _ = _run(tmp_path, f"max_epochs = 2\nenqueue = [{enqueue}]", 2,
                         first_without_memory, device="cuda:0", data=data,
                         space=TINY_SPACE.replace("batch_size = 32", "batch_size = 512"))
    assert ran == 2
    starved, fine = study.trials
    assert starved.state == TrialState.FAIL
    assert starved.user_attrs["fail_reason"].startswith(
        "CUDA out of memory on cuda:0: CUDA out of memory.")
    assert fine.state == TrialState.COMPLETE and fine.user_attrs["epochs_run"] == 2


def test_cuda_out_of_memory_fails_the_trial_with_its_reason(tmp_path: Path) -> None:
    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore")

    ctx = TrialContext(config=load_study(str(study_toml(tmp_path))), data=tiny_data(),
                       device="cuda:0", run_dir=tmp_path,
                       engine=make_engine(f"sqlite:///{tmp_path}/t.db"), train_fn=out_of_memory)
    study = optuna.create_study(direction="maximize")
    study.optimize(make_objective(ctx), n_trials=2, catch=(TrialFailed,))  # the loop goes on
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    assert study.trials[1].user_attrs["fail_reason"] == (
        "CUDA out of memory on cuda:0: CUDA out of memory. Tried to allocate 2.00 GiB"
    )


def test_a_trial_still_rising_is_not_pruned_yet(tmp_path: Path, tiny_h5: Path) -> None:
    # The median pruner would stop both at epoch 2 (below the first trial); keep_rising spares
    # the one that gained 0.1 in its last epoch, until it flattens.
    curves = {
        4: [0.8, 0.85, 0.9, 0.92],
        5: [0.5, 0.6, 0.7, 0.71],  # rising by 0.1 at epochs 2 and 3, then 0.01
        6: [0.5, 0.51, 0.52, 0.53],  # rising by 0.01 only
    }
    enqueue = ", ".join(f"{{conv_filters = [{f}], {REF}, learning_rate = 0.01}}" for f in curves)
    _, study, _ = _run(
        tmp_path, f"max_epochs = 4\nstagnant_t = 4\nenqueue = [{enqueue}]", 3,
        scripted_train(curves),
        pruner='type = "median"\nn_startup_trials = 1\nn_warmup_steps = 2\nn_min_trials = 1\n'
               "keep_rising = 0.05",
    )
    first, rising, flat = study.trials
    assert first.state == TrialState.COMPLETE
    assert rising.state == TrialState.PRUNED and rising.user_attrs["pruned_at_epoch"] == 4
    assert flat.state == TrialState.PRUNED and flat.user_attrs["pruned_at_epoch"] == 2


def test_asha_prunes_a_rising_trial_below_its_peers_at_the_first_epoch(
        tmp_path: Path, tiny_h5: Path) -> None:
    # keep_rising would have spared the second trial (0.1 a epoch); asha compares it at epoch 1
    # with the first trial (0.8, the reference) and stops it there. The third beats the first at
    # every rung.
    curves = {
        4: [0.8, 0.85, 0.9, 0.92],
        5: [0.5, 0.6, 0.7, 0.8],
        6: [0.82, 0.88, 0.93, 0.94],
        7: [0.81, 0.83, 0.86, 0.95],  # at epoch 3 below both that reached it (0.9, 0.93)
    }
    enqueue = ", ".join(f"{{conv_filters = [{f}], {REF}, learning_rate = 0.01}}" for f in curves)
    _, study, _ = _run(tmp_path, f"max_epochs = 4\nstagnant_t = 4\nenqueue = [{enqueue}]", 4,
                       scripted_train(curves), pruner='type = "asha"\nmin_resource = 1',
                       references=1)
    first, rising, better, late = study.trials
    assert first.state == TrialState.COMPLETE and first.value == 0.92
    assert rising.state == TrialState.PRUNED and rising.user_attrs["pruned_at_epoch"] == 1
    assert better.state == TrialState.COMPLETE and better.value == 0.94
    assert late.state == TrialState.PRUNED and late.user_attrs["pruned_at_epoch"] == 3


def test_rc_is_searched_and_recorded_with_the_trial(tmp_path: Path, tiny_h5: Path) -> None:
    seen = []

    def train(params, data, *, options, hooks, **rest):  # type: ignore[no-untyped-def]
        seen.append(options.rc)
        return scripted_train({params.conv_filters[0]: [0.6, 0.7]})(
            params, data, options=options, hooks=hooks, **rest)

    enqueue = f"{{conv_filters = [4], {REF}, learning_rate = 0.01}}"
    space = TINY_SPACE.replace("[fixed]", "rc = { choices = [false, true] }\n[fixed]")
    _, study, _ = _run(tmp_path, f"max_epochs = 2\nenqueue = [{enqueue}]", 6, train, space=space)
    reference, *others = study.trials
    assert reference.params["rc"] is False and reference.user_attrs["rc"] is False
    assert seen == [t.params["rc"] for t in study.trials]
    assert [t.user_attrs["rc"] for t in others] == [t.params["rc"] for t in others]
