"""Held-out scores (hpo.evaluate, basset-hpo evaluate): a real tiny study's best trial and its
reference are scored on the test split; the stored numbers are basset-test's on the exported
model and show in status, export --json and the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import TrialState

from basset.cli import train as basset_cli
from hpo import service_tables
from hpo.cli import main
from hpo.evaluate import load_scores
from results_testutil import run_tiny_study

# A reference and a second architecture, 2 epochs each.
ENQUEUE = ("enqueue = [{label = \"ref\", conv_filters = [6], conv_filter_sizes = [5], "
           "pool_width = [2], hidden_units = [12], learning_rate = 0.01, batch_size = 32}, "
           "{conv_filters = [10], conv_filter_sizes = [7], pool_width = [3], hidden_units = [20], "
           "learning_rate = 0.02, batch_size = 32}]")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("evaluate")
    url = run_tiny_study(folder, n_trials=2, top=f"max_epochs = 2\n{ENQUEUE}")
    return folder, url


def _hpo(folder: Path, url: str, command: str, *args: str) -> int:
    return main([command, "--study", str(folder / "tiny.toml"), "--storage", url, *args])


def _stored_mean(url: str, number: int) -> float:
    """The mean test AUROC row of trial `number` in the service's table basset_scores."""
    table = service_tables.scores
    with sa.create_engine(url).connect() as conn:
        return float(conn.execute(sa.select(table.c.auroc).where(
            (table.c.trial_number == number) & (table.c.split == "test"))).scalar_one())


def test_stored_test_scores_are_basset_tests_on_the_exported_model(
    study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url = study
    assert _hpo(folder, url, "evaluate", "--top", "2") == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "trial\treference\tvalid_auroc\ttest_auroc\ttest_auprc"
    assert len(printed) == 3  # the top 2, the reference among them
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    scores = load_scores(optuna.storages.RDBStorage(url), "tiny").get(best.number)
    assert scores is not None and math.isfinite(scores.auroc)
    assert _stored_mean(url, best.number) == pytest.approx(scores.auroc)
    assert "test_auroc" not in best.user_attrs  # the service's table holds them, not Optuna's

    model = tmp_path / "best.pt"
    assert _hpo(folder, url, "export", "-o", str(tmp_path / "best.json"), "--json",
                "--model", str(model)) == 0
    assert basset_cli.test_main([str(model), str(folder / "tiny.h5"), str(tmp_path / "t")]) == 0
    rows = [line.split("\t") for line in (tmp_path / "t" / "aucs.txt").read_text().splitlines()]
    assert [float(r[2]) for r in rows] == pytest.approx(scores.target_auroc, abs=1e-6)
    assert [float(r[3]) for r in rows] == pytest.approx(scores.target_auprc, abs=1e-6)
    assert f"mean AUROC {scores.auroc:.4f}" in capsys.readouterr().out

    exported = json.loads((tmp_path / "best.json").read_text())
    assert exported["test"]["auroc"] == pytest.approx(scores.auroc)
    assert [v["auroc"] for v in exported["test"]["targets"].values()] == pytest.approx(
        scores.target_auroc)
    assert list(exported["test"]["targets"]) == ["t0", "t1", "t2"]


def test_status_and_report_show_best_and_reference(
    study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url = study
    assert _hpo(folder, url, "evaluate") == 0  # top 1 and the reference
    capsys.readouterr()
    assert _hpo(folder, url, "status") == 0
    out = capsys.readouterr().out
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    reference = next(t for t in trials if t.user_attrs.get("reference") == "ref")
    ref_scores = load_scores(optuna.storages.RDBStorage(url), "tiny").get(reference.number)
    assert ref_scores is not None
    assert (f"reference ref (trial {reference.number}): valid {reference.value:.4f}, "
            f"test AUROC {ref_scores.auroc:.4f}") in out
    assert "best (trial" in out

    page = tmp_path / "r.html"
    assert _hpo(folder, url, "report", "-o", str(page)) == 0
    html = page.read_text()
    section = html[html.index('<section id="test-scores">'):]
    section = section[:section.index("</section>")]
    assert "fig-test-scores" in section
    assert f"<td>{ref_scores.auroc:.4f}</td>" in section
    assert "<td>t2</td>" in section
