"""basset-hpo export: a real tiny study -> params file -> basset-train builds the same network;
the exported checkpoint works with basset-test; every refusal is one line, exit 2, no file."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from basset.cli import train as basset_cli
from basset.nn.model import build_model
from basset.params import parse_params, read_params
from basset.training.checkpoint import load_model
from hpo.cli import main
from results_testutil import run_tiny_study

# Enqueued so the study holds two architectures whatever the sampler draws (2 epochs each).
ENQUEUE = ("enqueue = [{conv_filters = [6, 8], conv_filter_sizes = [5, 3], pool_width = [2, 2], "
           "hidden_units = [12], learning_rate = 0.01, batch_size = 32}, "
           "{conv_filters = [10], conv_filter_sizes = [7], pool_width = [3], hidden_units = [20], "
           "learning_rate = 0.02, batch_size = 32}]")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Three real 2-epoch trials of the tiny study, run by the service's worker loop."""
    folder = tmp_path_factory.mktemp("export")
    url = run_tiny_study(folder, n_trials=3, top=f"max_epochs = 2\n{ENQUEUE}")
    return folder, url


def _export(folder: Path, url: str, *args: str) -> int:
    return main(["export", "--study", str(folder / "tiny.toml"), "--storage", url, *args])


def _params_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_exported_params_train_the_same_network_and_model_is_tested(
    study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url = study
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) >= 2, [(t.number, t.state, t.user_attrs) for t in trials]
    best = max(complete, key=lambda t: t.value)
    out, model = tmp_path / "best_params.txt", tmp_path / "best.pt"

    assert _export(folder, url, "-o", str(out), "--model", str(model)) == 0
    assert f"trial {best.number} (value {best.value:.4f})" in capsys.readouterr().out
    exported = read_params(out)
    assert exported == parse_params(best.user_attrs["params_table"])
    assert out.read_text() == best.user_attrs["params_table"]

    # basset-train takes the file as it is and builds the same architecture.
    prefix = tmp_path / "retrain"
    h5 = folder / "tiny.h5"
    assert basset_cli.train_main(["-job", str(out), "-max_epochs", "1", "-save", str(prefix), "-q",
                       str(h5)]) == 0
    retrained = load_model(f"{prefix}_best.pt")
    assert retrained.params == exported
    expected = build_model(exported, 60, 3)
    assert str(retrained.model) == str(expected)
    assert _params_count(retrained.model) == _params_count(expected)

    # The exported checkpoint is the trial's best model, and basset-test accepts it.
    copied = load_model(model)
    assert copied.params == exported and copied.target_labels == ["t0", "t1", "t2"]
    assert model.read_bytes() == Path(best.user_attrs["best_checkpoint"]).read_bytes()
    assert _params_count(copied.model) == _params_count(expected)
    assert basset_cli.test_main([str(model), str(h5), str(tmp_path / "test"), "-q"]) == 0
    assert len((tmp_path / "test" / "aucs.txt").read_text().splitlines()) == 3
    fasta = tmp_path / "two.fa"
    fasta.write_text(">a\n" + "ACGT" * 15 + "\n>b\n" + "GATTACA" * 9 + "\n")
    assert basset_cli.predict_main([str(model), str(fasta), str(tmp_path / "p.tsv"), "-q"]) == 0
    rows = (tmp_path / "p.tsv").read_text().splitlines()
    assert rows[0] == "id\tt0\tt1\tt2" and [r.split("\t")[0] for r in rows[1:]] == ["a", "b"]


def test_json_export_of_a_chosen_trial(study: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = study
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    chosen = next(t for t in trials if t.state == TrialState.COMPLETE and t.number == 0)
    out = tmp_path / "trial0.json"
    assert _export(folder, url, "-o", str(out), "--trial", "0", "--json") == 0
    exported = json.loads(out.read_text())
    assert exported["trial"] == 0 and exported["value"] == chosen.value
    assert exported["study"] == "tiny"
    assert exported["params"]["conv_filters"] == [6, 8]
    assert exported["params"] == parse_params(chosen.user_attrs["params_table"]).to_dict()


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err


def test_refusals_are_one_line_and_write_nothing(
    study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url = study
    out, model = tmp_path / "p.txt", tmp_path / "m.pt"
    running = optuna.load_study(study_name="tiny", storage=url).ask()  # a trial still running

    assert _export(folder, url, "-o", str(out), "--trial", "99") == 2
    _one_line_error(capsys, "no trial 99", f"trials 0..{running.number}")
    assert _export(folder, url, "-o", str(out), "--trial", str(running.number),
                   "--model", str(model)) == 2
    _one_line_error(capsys, f"trial {running.number}", "RUNNING, not COMPLETE")
    assert _export(folder, url, "-o", str(tmp_path / "no" / "p.txt")) == 2
    _one_line_error(capsys, "does not exist")
    assert not out.exists() and not model.exists()
    assert list(tmp_path.iterdir()) == []  # no temp files either


def test_a_study_without_completed_trials_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    study = optuna.create_study(study_name="fresh", storage=url, direction="maximize")
    study.tell(study.ask(), state=TrialState.FAIL)
    out = tmp_path / "p.txt"
    args = ["export", "--study", "fresh", "--storage", url, "-o", str(out)]
    assert main(args) == 2
    _one_line_error(capsys, "study 'fresh' has no completed trial yet")
    assert main([*args[:2], "nosuch", *args[3:]]) == 2
    _one_line_error(capsys, "no study 'nosuch'")
    assert not out.exists()
