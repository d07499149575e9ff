"""Transfer-learning studies (seed_model): every trial starts from the seed model's convolution
layers (kept when frozen), its params table shows them so basset-train -job ... -seed reruns the
trial, a new target count works, and bad studies are refused in one line before anything starts.
Real tiny trials through the service's worker loop in this process."""

from __future__ import annotations

import shlex
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

import basset.training.trainer
import hpo.study
from basset.cli import train as basset_cli
from basset.params import CONV_KEYS, JobParams, parse_params
from basset.training.checkpoint import load_model
from basset.training.seam import TrainOptions
from hpo.cli import main as hpo_main
from hpo.config import load_study
from hpo.study import prepare_study, seeded_config
from hpo.workers import RunPlan, run_trials
from hpo_testutil import study_toml, tiny_data, write_h5
from synth_data import make_data

SEED_PARAMS = JobParams(conv_filters=[6, 8], conv_filter_sizes=[5, 3], pool_width=[2, 2],
                        hidden_units=[12], batch_size=32, last_pool="soft")
SPACE = """
[space]
num_hidden = [1, 2]
hidden_units = [8, 16]
learning_rate = { low = 1e-3, high = 3e-2, log = true }
freeze_conv = { choices = [true, false] }
max_epochs = [1, 2]

[fixed]
batch_size = 32
"""


@pytest.fixture(scope="module")
def seed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained 2 epochs on 3 targets of 60 bp."""
    folder = tmp_path_factory.mktemp("seed")
    torch.set_num_threads(1)
    result = basset.training.trainer.train(SEED_PARAMS, tiny_data(), options=TrainOptions(
        max_epochs=2, save_prefix=folder / "seed", quiet=True))
    assert result.best_path is not None
    return result.best_path


def _transfer_study(folder: Path, seed: Path, *, space: str = SPACE, seq_len: int = 60) -> Path:
    """Five targets (the seed has three) of `seq_len` bp, and a study fine-tuning `seed`."""
    write_h5(folder / "five.h5", make_data(n_train=120, n_valid=50, n_test=30, seq_len=seq_len,
                                           num_targets=5, seed=7))
    # Random sampling with seed 1 draws both frozen and tuned convolutions in four trials.
    return study_toml(folder, f'seed_model = "{seed}"\nseed = 1', data=folder / "five.h5",
                      space=space, sampler='type = "random"')


def test_every_trial_starts_from_the_seed_convolutions_and_reruns_with_basset_train(
    seed_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    seed = load_model(seed_model)
    at_first_epoch: list[dict[str, torch.Tensor]] = []
    original = basset.training.trainer._Run.train_interval

    def spy(self, epoch, progress, on_progress):  # type: ignore[no-untyped-def]
        if epoch == 1:
            at_first_epoch.append({k: v.clone() for k, v in self.model.conv.state_dict().items()})
        return original(self, epoch, progress, on_progress)

    monkeypatch.setattr(basset.training.trainer._Run, "train_interval", spy)
    config = seeded_config(load_study(str(_transfer_study(tmp_path, seed_model))))
    url = f"sqlite:///{tmp_path}/studies/tiny.db"
    prepare_study(config, url)
    run_trials(RunPlan(config=config, url=url, n_trials=4, devices=["cpu"], threads=1), 0)

    trials = optuna.load_study(study_name="tiny", storage=url).trials
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials), [
        (t.state, t.user_attrs.get("fail_reason")) for t in trials]
    assert len(at_first_epoch) == 4
    for conv in at_first_epoch:  # every trial's first epoch starts from the seed's filters
        for key, value in seed.model.conv.state_dict().items():
            assert torch.equal(conv[key], value), key
    frozen = [t for t in trials if t.params["freeze_conv"]]
    tuned = [t for t in trials if not t.params["freeze_conv"]]
    assert frozen and tuned, "the sampler drew both"
    for t in trials:
        table = parse_params(t.user_attrs["params_table"])
        for key in CONV_KEYS:  # the trial's table says what it trained: the seed's layers
            assert getattr(table, key) == getattr(seed.params, key), key
        trained = load_model(t.user_attrs["checkpoint"])
        assert trained.target_labels == [f"t{i}" for i in range(5)]  # a new output layer
        assert trained.params.hidden_units == table.hidden_units  # the trial's own head
        assert len(t.intermediate_values) <= t.params["max_epochs"]
        same = [torch.equal(v, trained.model.conv.state_dict()[k])
                for k, v in seed.model.conv.state_dict().items()]
        assert all(same) if t.params["freeze_conv"] else not all(same)

    # The stored command and params table rerun a trial: the same first epoch.
    trial = tuned[0]
    (tmp_path / "params.txt").write_text(trial.user_attrs["params_table"])
    argv = shlex.split(trial.user_attrs["train_command"])[1:]
    assert argv[argv.index("-seed") + 1] == str(seed_model)
    assert basset_cli.train_main(["-q", "-save", str(tmp_path / "rerun"), *argv]) == 0
    again = torch.load(tmp_path / "rerun_check.pt", weights_only=True)
    assert again["history"][0]["valid_auroc"] == pytest.approx(trial.intermediate_values[1])


@pytest.mark.parametrize("case, says", [
    ("conv-key-in-space", "space.conv_filters: a transfer study (seed_model) takes its "
                          "convolution layers from the seed model"),
    ("conv-count-fixed", "fixed.num_conv: a transfer study"),
    ("missing-seed", "model file not found"),
    ("unloadable-seed", "is not a loadable basset-hpo model"),
    ("other-sequence-length", "takes 60 bp sequences, the data"),
    ("freeze-without-seed", "space.freeze_conv: only a transfer study"),
    ("epochs-above-study", "max_epochs: the space reaches 9"),
])
def test_bad_transfer_studies_are_one_line_before_anything_starts(
    seed_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, case: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    seed, space, seq_len = seed_model, SPACE, 60
    if case == "conv-key-in-space":
        space = SPACE.replace("[space]", "[space]\nconv_filters = [4, 8]")
    elif case == "conv-count-fixed":
        space = SPACE + "num_conv = 2\n"
    elif case == "missing-seed":
        seed = tmp_path / "nope_best.pt"
    elif case == "unloadable-seed":
        seed = tmp_path / "text_best.pt"
        seed.write_text("not a model\n")
    elif case == "other-sequence-length":
        seq_len = 50
    elif case == "epochs-above-study":
        space = SPACE.replace("max_epochs = [1, 2]", "max_epochs = [1, 9]")
    path = _transfer_study(tmp_path, seed, space=space, seq_len=seq_len)
    if case == "freeze-without-seed":
        path.write_text(path.read_text().replace(f'seed_model = "{seed}"', ""))
    assert hpo_main(["run", "--study", str(path), "--workers", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "studies").exists()  # no database, no trial folder


def test_a_missing_seed_model_is_made_when_the_study_asks(
    seed_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Path] = []

    def make_source_model(path: Path) -> Path:  # the demo's 6-epoch run, replaced by a copy
        made.append(path)
        path.parent.mkdir(parents=True)
        path.write_bytes(seed_model.read_bytes())
        return path

    monkeypatch.setattr(hpo.study, "make_source_model", make_source_model)
    wanted = tmp_path / "source" / "model_best.pt"
    path = _transfer_study(tmp_path, wanted)
    path.write_text(
        path.read_text().replace(
            f'seed_model = "{wanted}"', f'seed_model = "{wanted}"\ngenerate_seed_model = true'
        )
    )
    config = seeded_config(load_study(str(path)))
    assert made == [wanted]
    assert config.fixed["conv_filters"] == SEED_PARAMS.conv_filters
    assert config.padding == SEED_PARAMS.padding
    assert seeded_config(load_study(str(path))).fixed == config.fixed and made == [wanted]
