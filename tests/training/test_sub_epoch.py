"""eval_every: evaluations every N training sequences, across epochs; exact mid-epoch restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_trainer import small_params

from basset.training.batches import BatchStream
from basset.training.checkpoint import read_checkpoint
from basset.training.seam import TrainHooks, TrainOptions, TrainProgress, TrainResult
from basset.training.trainer import train
from synth_data import make_data, one_thread

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


def _options(**changes: object) -> TrainOptions:
    values: dict[str, object] = dict(quiet=True, rand=3, rc=True, drop_rate=True)
    values.update(changes)
    return TrainOptions(**values)  # type: ignore[arg-type]


def _params():  # type: ignore[no-untyped-def]
    return small_params(hidden_dropouts=[0.3], conv_dropouts=[0.1, 0.1], learning_rate=0.01)


def _record_batches(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """Every batch the trainer takes, in order (its sequence indices)."""
    seen: list[list[int]] = []
    original = BatchStream.next

    def spy(self: BatchStream) -> tuple[torch.Tensor, int]:
        index, epoch = original(self)
        seen.append(index.tolist())
        return index, epoch

    monkeypatch.setattr(BatchStream, "next", spy)
    return seen


def _rows(result: TrainResult) -> list[tuple[object, ...]]:
    return [(m.epoch, m.sequences, m.train_loss, m.valid_loss, m.valid_metric, m.learning_rate,
             m.is_best) for m in result.history]


def _same_weights(a: Path, b: Path) -> None:
    a_state, b_state = read_checkpoint(a).model, read_checkpoint(b).model
    for key, value in a_state.items():
        assert torch.equal(value, b_state[key]), key


def test_evaluations_come_every_n_sequences_across_epochs() -> None:
    # 256 sequences in batches of 32: 8 steps an epoch; every 80 sequences = 2 whole batches.
    progress: list[TrainProgress] = []
    result = train(_params(), make_data(n_train=256), options=_options(eval_every=80, max_epochs=6),
                   hooks=TrainHooks(on_progress=progress.append))
    assert [m.epoch for m in result.history] == [1, 2, 3, 4, 5, 6]
    assert [m.sequences for m in result.history] == [64, 128, 192, 256, 320, 384]
    assert result.epochs_run == 6 and result.stop_reason == "max_epochs"
    assert len(progress) == 12
    assert [(p.epoch, p.epoch_done, p.to_next_eval) for p in progress[6:10]] == [
        (1, 224, 32), (1, 256, 0), (2, 32, 32), (2, 64, 0)]
    assert {p.epoch_size for p in progress} == {256}
    assert [p.sequences for p in progress] == [32 * i for i in range(1, 13)]


def test_eval_every_the_training_set_size_is_per_epoch_training(tmp_path: Path) -> None:
    data = make_data(n_train=250)  # 7 whole batches of 32 an epoch; 26 sequences left out
    per_epoch = train(_params(), data, options=_options(max_epochs=3, save_prefix=tmp_path / "e"))
    every_n = train(_params(), data,
                    options=_options(max_epochs=3, eval_every=250, save_prefix=tmp_path / "n"))
    assert _rows(per_epoch) == _rows(every_n)
    assert [m.sequences for m in every_n.history] == [224, 448, 672]
    _same_weights(tmp_path / "e_check.pt", tmp_path / "n_check.pt")


@pytest.mark.parametrize("legacy_order", [False, True])
def test_a_restart_mid_epoch_trains_exactly_the_remaining_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, legacy_order: bool
) -> None:
    data = make_data()  # 8 steps an epoch; an evaluation every 3: the third one is mid-epoch 2
    batches = _record_batches(monkeypatch)
    opts = dict(eval_every=96, legacy_order=legacy_order)
    straight = train(_params(), data, options=_options(max_epochs=5, save_prefix=tmp_path / "a",
                                                       **opts))
    straight_batches = list(batches)
    batches.clear()
    first = train(_params(), data, options=_options(max_epochs=3, save_prefix=tmp_path / "b",
                                                    **opts))
    assert first.history[-1].sequences == 9 * 32
    check = read_checkpoint(tmp_path / "b_check.pt")
    assert check.state.steps == 9 and ("pass" in check.rng) != legacy_order  # type: ignore[operator]
    resumed = train(_params(), data, options=_options(
        max_epochs=5, save_prefix=tmp_path / "b", restart=tmp_path / "b_check.pt", **opts))
    assert batches == straight_batches  # none repeated, none skipped, same order
    assert len(batches) == 15
    assert _rows(resumed) == _rows(straight)
    _same_weights(tmp_path / "a_check.pt", tmp_path / "b_check.pt")


def test_a_checkpoint_from_before_sub_epoch_evaluation_resumes_at_its_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_data()
    straight = train(_params(), data, options=_options(max_epochs=3, save_prefix=tmp_path / "a"))
    train(_params(), data, options=_options(max_epochs=2, save_prefix=tmp_path / "b"))
    check = read_checkpoint(tmp_path / "b_check.pt")
    check.state.steps = None  # as a file of an earlier version holds it
    check.save(tmp_path / "old.pt")
    resumed = train(_params(), data, options=_options(max_epochs=3, restart=tmp_path / "old.pt"))
    assert _rows(resumed) == _rows(straight)
