"""Optuna through its public API only: nothing under hpo/ or tests/ reads or writes a private
attribute of an Optuna object (`trial._trial_id`, `study._study_id`, ...) or names one of
Optuna's tables in SQL (Optuna migrates them between releases). The private names and the table
names are Optuna's own, collected from live objects and a fresh storage."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from hpo.storage import optuna_tables

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("hpo", "tests")
# Experimental samplers, pruners and callbacks say so when they are made.
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def _optuna_objects(tmp_path: Path) -> Iterator[object]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, 0.5)
    yield from (storage, study, trial, study.trials[0],
                optuna.distributions.FloatDistribution(0, 1))
    yield from (optuna.storages.RetryHeartbeatStaleTrialCallback(),
                optuna.study.MaxTrialsCallback(1))
    for module in (optuna.samplers, optuna.pruners):
        for name in module.__all__:
            kind = getattr(module, name)
            if isinstance(kind, type):
                yield kind
                try:
                    made = kind()
                except TypeError:  # needs arguments: its class's names still count
                    continue
                yield made


def optuna_private_names(tmp_path: Path) -> set[str]:
    names: set[str] = set()
    for obj in _optuna_objects(tmp_path):
        found = set(dir(obj)) | set(getattr(obj, "__dict__", {}))
        names |= {n for n in found if n.startswith("_") and not n.startswith("__")}
    return names


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    """Every module under hpo/ and tests/ but this one (its probes name what it forbids)."""
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            if path != Path(__file__).resolve():
                yield path, ast.parse(path.read_text(), str(path))


def private_uses(tree: ast.Module, private: set[str]) -> list[tuple[int, str]]:
    """`x._name` (x not self/cls) and getattr/setattr/hasattr(x, "_name") for Optuna's names."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in private:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append((node.lineno, f".{node.attr}"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) > 1
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in private):
            found.append((node.lineno, f"{node.func.id}(..., {node.args[1].value!r})"))
    return sorted(found)


def sql_uses(tree: ast.Module, tables: set[str]) -> list[tuple[int, str]]:
    """Strings that name an Optuna table where SQL puts a table (FROM, INTO, UPDATE, JOIN,
    TABLE), and sqlalchemy table()/Table()/text() given one by name."""
    names = "|".join(sorted(tables))
    sql = re.compile(rf"\b(from|into|update|join|table)\s+[\"'`]?({names})\b", re.IGNORECASE)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if (match := sql.search(node.value)) is not None:
                found.append((node.lineno, match.group(0)))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("table", "Table", "text") and node.args[0].value in tables:
                found.append((node.lineno, f"{called}({node.args[0].value!r})"))
    return sorted(found)


def test_the_collected_names_are_optunas(tmp_path: Path) -> None:
    """The check would pass vacuously if nothing were collected."""
    assert {"_trial_id", "_study_id", "_storage"} <= optuna_private_names(tmp_path)
    assert {"trials", "trial_user_attributes", "studies"} <= optuna_tables()


def test_the_checks_find_what_they_forbid(tmp_path: Path) -> None:
    private, tables = optuna_private_names(tmp_path), optuna_tables()
    bad = ast.parse(
        "trial._trial_id\ngetattr(study, '_study_id')\nself._storage\n"
        "conn.execute('UPDATE trial_user_attributes SET value_json = 1')\n"
        "sa.table('trials', sa.column('number'))\n'the trials from a study'\n"
    )
    assert private_uses(bad, private) == [(1, "._trial_id"), (2, "getattr(..., '_study_id')")]
    assert sql_uses(bad, tables) == [(4, "UPDATE trial_user_attributes"), (5, "table('trials')")]


@pytest.mark.parametrize("check", ["private attributes", "tables in SQL"])
def test_hpo_and_tests_use_optuna_through_its_public_api(check: str, tmp_path: Path) -> None:
    forbidden = (optuna_private_names(tmp_path) if check == "private attributes"
                 else optuna_tables())
    scan = private_uses if check == "private attributes" else sql_uses
    found = [f"{path.relative_to(REPO)}:{line}: {what}"
             for path, tree in _sources() for line, what in scan(tree, forbidden)]
    assert not found, "Optuna's " + check + " used:\n" + "\n".join(found)
