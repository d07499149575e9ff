"""Test scores live in the service's own table basset_scores, not in Optuna's tables. A study
written by a release that stored them as trial user attributes (made here the way it stored
them) is still read by status, export --json, report and confirm; a new score goes to the table
and wins over the old attribute."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from basset import JobParams, Scores
from hpo import confirm, evaluate, service_tables
from hpo.cli import main
from hpo.errors import StorageError

# What the release before the table stored on a scored trial (None: a target with one class).
LEGACY = {"test_auroc": 0.75, "test_auprc": 0.5, "test_target_auroc": [0.7, 0.8, None],
          "test_target_auprc": [0.4, 0.6, None]}


def _old_study(folder: Path) -> str:
    """A study as the release before basset_scores left it: Optuna's tables, basset_epochs of
    its first version, the best trial's test scores among its user attributes."""
    url = f"sqlite:///{folder}/old.db"
    engine = sa.create_engine(url)
    old = sa.MetaData()
    sa.Table("basset_epochs", old, *[sa.Column(c.name, c.type) for c in service_tables.epochs.c
                                     if c.name != "sequences"])
    old.create_all(engine)
    engine.dispose()
    study = optuna.create_study(study_name="old", storage=url, direction="maximize")
    study.set_user_attr("target_labels", ["t0", "t1", "t2"])
    table = JobParams().to_table()
    study.add_trial(optuna.trial.create_trial(
        value=0.8, user_attrs={"params_table": table, "reference": "ref", **LEGACY}))
    study.add_trial(optuna.trial.create_trial(value=0.7, user_attrs={"params_table": table}))
    return url


def _hpo(url: str, *args: str) -> int:
    return main([args[0], "--study", "old", "--storage", url, *args[1:]])


def test_a_study_of_the_release_before_is_read_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _old_study(tmp_path)
    assert _hpo(url, "status") == 0
    assert "reference ref (trial 0): valid 0.8000, test AUROC 0.7500, AUPRC 0.5000" in (
        capsys.readouterr().out)

    assert _hpo(url, "export", "-o", str(tmp_path / "best.json"), "--json") == 0
    exported = json.loads((tmp_path / "best.json").read_text())
    assert exported["test"] == {"auroc": 0.75, "auprc": 0.5, "targets": {
        "t0": {"auroc": 0.7, "auprc": 0.4}, "t1": {"auroc": 0.8, "auprc": 0.6},
        "t2": {"auroc": None, "auprc": None}}}

    assert _hpo(url, "report", "-o", str(tmp_path / "r.html")) == 0
    page = (tmp_path / "r.html").read_text()
    section = page[page.index('<section id="test-scores">'):]
    assert "<td>mean</td><td>0.7500</td><td>0.5000</td>" in section[:section.index("</section>")]

    linked = optuna.create_study(study_name=confirm.confirm_name("old"), storage=url,
                                 direction="maximize")
    linked.add_trial(optuna.trial.create_trial(value=0.78, user_attrs={"source_trial": 0}))
    [summary] = confirm.load_summaries(optuna.storages.RDBStorage(url), "old")
    assert summary.original_test == 0.75 and summary.valid == [0.78] and summary.test == []


def test_a_new_score_goes_to_the_table_and_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _old_study(tmp_path)
    storage = optuna.storages.RDBStorage(url)
    evaluate.store_scores(storage, "old", {0: Scores("test", [0.9, 0.95, math.nan],
                                                     [0.6, 0.7, math.nan])})
    assert _hpo(url, "status") == 0
    assert "test AUROC 0.9250, AUPRC 0.6500" in capsys.readouterr().out
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(service_tables.scores)).mappings().all()
        version = conn.execute(sa.select(service_tables.schema.c.version)).scalars().all()
    assert [(r["study_name"], r["trial_number"], r["split"], r["auroc"]) for r in rows] == [
        ("old", 0, "test", pytest.approx(0.925))]
    assert json.loads(rows[0]["target_auroc"]) == [0.9, 0.95, None]
    assert version == [service_tables.SCHEMA_VERSION]
    # The old attribute is left where it was, and Optuna's trial is otherwise untouched.
    trial = optuna.load_study(study_name="old", storage=url).trials[0]
    assert trial.user_attrs["test_auroc"] == 0.75
    assert evaluate.load_scores(storage, "old")[0].target_auroc[:2] == [0.9, 0.95]


def test_tables_of_a_newer_release_are_refused(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/new.db")
    service_tables.create_tables(engine)
    service_tables.create_tables(engine)  # idempotent: one version row
    with engine.begin() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            service_tables.schema)).scalar() == 1
        conn.execute(service_tables.schema.update().values(
            version=service_tables.SCHEMA_VERSION + 1))
    with pytest.raises(StorageError, match="made by a newer basset-hpo"):
        service_tables.create_tables(engine)
