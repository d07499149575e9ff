"""Checkpoints: exact restart, seeding from another model, safe loading."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from test_trainer import small_params

import basset.training.trainer
from basset.errors import DataError
from basset.training.checkpoint import load_model, read_checkpoint
from basset.training.predict import predict_proba
from basset.training.resident import codes_to_onehot
from basset.training.seam import TrainOptions
from basset.training.trainer import train
from synth_data import make_data, one_thread

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


def _options(**changes: object) -> TrainOptions:
    values: dict[str, object] = dict(quiet=True, rand=5, rc=True, drop_rate=True)
    values.update(changes)
    return TrainOptions(**values)  # type: ignore[arg-type]


def test_restart_continues_exactly(tmp_path: Path) -> None:
    data = make_data()
    params = small_params(hidden_dropouts=[0.3], conv_dropouts=[0.1, 0.1], learning_rate=0.01)
    straight = train(params, data, options=_options(max_epochs=4, save_prefix=tmp_path / "a"))

    first = train(params, data, options=_options(max_epochs=2, save_prefix=tmp_path / "b"))
    assert first.epochs_run == 2
    resumed = train(
        params, data,
        options=_options(max_epochs=4, save_prefix=tmp_path / "b", restart=tmp_path / "b_check.pt"),
    )
    assert resumed.epochs_run == 4 and len(resumed.history) == 4
    for a, b in zip(straight.history, resumed.history, strict=True):
        assert (a.train_loss, a.valid_loss, a.valid_metric, a.learning_rate, a.is_best) == (
            b.train_loss, b.valid_loss, b.valid_metric, b.learning_rate, b.is_best
        )
    assert (straight.best_metric, straight.best_epoch) == (resumed.best_metric, resumed.best_epoch)
    a_state = read_checkpoint(tmp_path / "a_check.pt").model
    b_state = read_checkpoint(tmp_path / "b_check.pt").model
    for key, value in a_state.items():
        assert torch.equal(value, b_state[key]), key
    tsv = (tmp_path / "b_metrics.tsv").read_text().splitlines()
    assert len(tsv) == 5  # header + 4 epochs, the first two from before the restart


def test_restart_on_other_data_is_refused(tmp_path: Path) -> None:
    train(small_params(), make_data(), options=_options(max_epochs=1, save_prefix=tmp_path / "r"))
    with pytest.raises(DataError, match="other data"):
        train(
            small_params(), make_data(num_targets=3),
            options=_options(max_epochs=2, restart=tmp_path / "r_check.pt"),
        )


def _start_spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, torch.Tensor]:
    """The model's state once seeded, before any training (filled in by train)."""
    at_start: dict[str, torch.Tensor] = {}
    original = basset.training.trainer.copy_seed_layers

    def spy(model: torch.nn.Module, seed: torch.nn.Module) -> bool:
        copied = original(model, seed)  # type: ignore[arg-type]
        at_start.update({k: v.clone() for k, v in model.state_dict().items()})
        return copied

    monkeypatch.setattr(basset.training.trainer, "copy_seed_layers", spy)
    return at_start


@pytest.mark.parametrize("hidden_units", [[16], [5, 7]])
def test_seed_from_two_targets_into_five(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hidden_units: list[int]
) -> None:
    train(small_params(), make_data(), options=_options(max_epochs=1, save_prefix=tmp_path / "s"))
    seed = load_model(tmp_path / "s_best.pt")
    at_start = _start_spy(monkeypatch)
    five = make_data(num_targets=5, seed=1)
    # The job's conv keys give way to the seed's; its hidden layers are the job's, copied from
    # the seed when they are the seed's size ([16]), new otherwise ([5, 7]).
    result = train(
        small_params(conv_filters=[3, 3], hidden_units=hidden_units),
        five,
        options=_options(
            max_epochs=2, save_prefix=tmp_path / "t", seed_model=tmp_path / "s_best.pt"
        ),
    )
    assert result.epochs_run == 2
    same_hidden = hidden_units == seed.params.hidden_units
    for key, value in seed.model.state_dict().items():
        if key.startswith("conv.") or (same_hidden and key.startswith("hidden.")):
            assert torch.equal(at_start[key], value), key
        elif key.startswith("output."):
            assert at_start[key].shape[0] == 5
    trained = load_model(tmp_path / "t_check.pt")
    assert trained.target_labels == five.target_labels
    assert trained.params.conv_filters == [8, 8] and trained.params.hidden_units == hidden_units
    assert [m.out_features for m in trained.model.hidden.modules()
            if isinstance(m, torch.nn.Linear)] == hidden_units
    assert not torch.equal(trained.model.first_conv.weight, seed.model.first_conv.weight)


def test_a_soft_pooled_seed_keeps_its_pooling_and_sharpness(tmp_path: Path) -> None:
    train(small_params(last_pool="soft"), make_data(),
          options=_options(max_epochs=1, save_prefix=tmp_path / "s"))
    seed = load_model(tmp_path / "s_best.pt").model
    train(small_params(), make_data(num_targets=3, seed=2),  # the job says max; the seed wins
          options=_options(max_epochs=1, save_prefix=tmp_path / "t",
                           seed_model=tmp_path / "s_best.pt", freeze_conv=True))
    tuned = load_model(tmp_path / "t_check.pt")
    assert tuned.params.last_pool == "soft"
    sharpness = [k for k in seed.state_dict() if k.endswith("log_sharpness")]
    assert len(sharpness) == 1 and not torch.equal(seed.state_dict()[sharpness[0]],
                                                   torch.zeros(8))  # it trained
    assert torch.equal(tuned.model.state_dict()[sharpness[0]], seed.state_dict()[sharpness[0]])


def test_freeze_conv_keeps_the_seed_filters(tmp_path: Path) -> None:
    train(small_params(), make_data(), options=_options(max_epochs=1, save_prefix=tmp_path / "s"))
    result = train(
        small_params(), make_data(num_targets=3, seed=2),
        options=_options(max_epochs=2, save_prefix=tmp_path / "f",
                         seed_model=tmp_path / "s_best.pt", freeze_conv=True),
    )
    assert result.epochs_run == 2
    seed, tuned = (
        load_model(tmp_path / "s_best.pt").model,
        load_model(tmp_path / "f_check.pt").model,
    )
    for key, value in seed.conv.state_dict().items():
        assert torch.equal(value, tuned.conv.state_dict()[key]), key
    assert not torch.equal(seed.hidden[0][0].weight, tuned.hidden[0][0].weight)


def test_load_model_round_trip(tmp_path: Path) -> None:
    data = make_data()
    result = train(small_params(), data, options=_options(max_epochs=2, save_prefix=tmp_path / "m"))
    loaded = load_model(result.best_path)  # type: ignore[arg-type]
    assert not loaded.model.training
    assert loaded.params == small_params() and loaded.seq_len == data.seq_len
    assert loaded.target_labels == data.target_labels
    probs = predict_proba(loaded.model, data.valid.seqs, batch_size=50)
    assert probs.shape == (len(data.valid), 2) and ((probs >= 0) & (probs <= 1)).all()
    with torch.no_grad():
        x = codes_to_onehot(torch.from_numpy(data.valid.seqs[:7]))
        direct = torch.sigmoid(loaded.model(x)).numpy()
    np.testing.assert_allclose(probs[:7], direct, rtol=1e-5, atol=1e-6)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "basset-hpo checkpoint", "model": _Exploit(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(DataError, match="not a loadable"):
        load_model(path)
    assert not marker.exists()


def test_foreign_and_missing_files(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a basset-hpo checkpoint"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(DataError, match="not found"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(DataError):
        load_model(tmp_path / "junk.pt")
