"""valid_subset: evaluations score a fixed, seeded subset of the validation split; the best
model is scored on the whole split afterwards (validate_checkpoint); train_rate."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import small_params

from basset.cli.train import train_main
from basset.training.checkpoint import load_model
from basset.training.metrics import binary_metrics, nan_mean
from basset.training.predict import predict_proba
from basset.training.seam import StopTraining, TrainOptions
from basset.training.timing import MIN_STEPS, train_rate
from basset.training.trainer import train
from basset.training.validation import subset_rows, validate_checkpoint
from hpo_testutil import write_h5
from synth_data import make_data, one_thread

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


def test_the_subset_is_seeded_sorted_distinct_and_the_same_every_time() -> None:
    rows = subset_rows(1000, 100)
    assert rows is not None and len(rows) == 100 and len(set(rows.tolist())) == 100
    assert list(rows) == sorted(rows) and 0 <= rows[0] and rows[-1] < 1000
    again = subset_rows(1000, 100)
    assert again is not None and np.array_equal(rows, again)
    # Pinned: a change of the draw would silently compare a study's old and new evaluations
    # on other rows.
    assert subset_rows(20, 5).tolist() == PINNED  # type: ignore[union-attr]
    # Not the first rows, not every tenth: spread over the split.
    assert rows[0] < 100 and rows[-1] > 900 and len(np.unique(np.diff(rows))) > 10
    assert subset_rows(1000, 1000) is None and subset_rows(1000, None) is None


PINNED = [1, 2, 7, 9, 14]


def _auroc_on(model_path: Path, seqs: np.ndarray, targets: np.ndarray) -> float:
    model = load_model(model_path).model
    preds = predict_proba(model, seqs, batch_size=1024)
    return nan_mean(binary_metrics(targets, preds)[0])


def test_evaluations_score_exactly_the_subset_rows(tmp_path: Path) -> None:
    data = make_data(n_train=128, n_valid=300, num_targets=3, seed=4)
    result = train(small_params(), data, options=TrainOptions(
        max_epochs=1, quiet=True, valid_subset=60, save_prefix=tmp_path / "s"))
    rows = subset_rows(300, 60)
    assert rows is not None
    on_subset = _auroc_on(tmp_path / "s_check.pt", data.valid.seqs[rows], data.valid.targets[rows])
    on_all = _auroc_on(tmp_path / "s_check.pt", data.valid.seqs, data.valid.targets)
    assert result.history[0].valid_metric == pytest.approx(on_subset, abs=1e-6)
    assert on_subset != pytest.approx(on_all, abs=1e-6)  # the test can tell the two apart
    full = validate_checkpoint(tmp_path / "s_best.pt", data, amp=False)
    assert full.rows == 300 and full.metric == pytest.approx(on_all, abs=1e-6)
    assert len(full.target_metric) == 3


def test_a_subset_as_large_as_the_split_is_the_whole_split() -> None:
    data = make_data(n_train=128, n_valid=100, seed=5)
    plain = train(small_params(), data, options=TrainOptions(max_epochs=2, quiet=True))
    subset = train(small_params(), data,
                   options=TrainOptions(max_epochs=2, quiet=True, valid_subset=100))
    assert [m.valid_metric for m in plain.history] == [m.valid_metric for m in subset.history]


def test_a_restart_mid_epoch_with_a_subset_continues_exactly(tmp_path: Path) -> None:
    data = make_data(n_train=256, n_valid=200, seed=6)

    def options(prefix: str, evals: int, restart: Path | None = None) -> TrainOptions:
        return TrainOptions(max_epochs=evals, stagnant_t=10, eval_every=96, valid_subset=50,
                            quiet=True, save_prefix=tmp_path / prefix, restart=restart)

    straight = train(small_params(), data, options=options("a", 5))
    train(small_params(), data, options=options("b", 2))
    resumed = train(small_params(), data, options=options("b", 5, tmp_path / "b_check.pt"))
    assert [m.valid_metric for m in straight.history] == [
        m.valid_metric for m in resumed.history]
    assert [m.sequences for m in resumed.history] == [96 * e for e in range(1, 6)]


def test_validate_checkpoint_stops_when_cancelled(tmp_path: Path) -> None:
    data = make_data(n_train=64, n_valid=40, seed=7)
    train(small_params(), data, options=TrainOptions(max_epochs=1, quiet=True,
                                                     save_prefix=tmp_path / "c"))
    with pytest.raises(StopTraining):
        validate_checkpoint(tmp_path / "c_best.pt", data, cancel=lambda: True)


def test_basset_train_valid_subset_writes_the_whole_split_score(tmp_path: Path) -> None:
    data = make_data(n_train=128, n_valid=300, num_targets=3, seed=8)
    path = write_h5(tmp_path / "d.h5", data)
    prefix, result = tmp_path / "m", tmp_path / "best.txt"
    assert train_main([str(path), "-max_epochs", "2", "--valid-subset", "50", "-save",
                       str(prefix), "-result", str(result), "-q"]) == 0
    written = float(result.read_text())
    best = _auroc_on(Path(f"{prefix}_best.pt"), data.valid.seqs, data.valid.targets)
    assert written == pytest.approx(best, abs=1e-6)


def test_train_rate_times_steady_steps() -> None:
    steps: list[int] = []
    original = torch.optim.RMSprop.step

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        steps.append(1)
        return original(self, *args, **kwargs)

    torch.optim.RMSprop.step = counting  # type: ignore[method-assign]
    try:
        rate = train_rate(small_params(), 50, 2, seconds=0.0)
    finally:
        torch.optim.RMSprop.step = original  # type: ignore[method-assign]
    assert math.isfinite(rate) and rate > 0
    assert len(steps) == 2 * MIN_STEPS  # no time asked: the minimum, then it stops
