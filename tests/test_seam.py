"""The seam between the service and the trainer: hpo/ uses basset only as `from basset import
NAME` with NAME in `basset.__all__`, `__all__` holds exactly what hpo/ uses, and basset/ never
imports hpo or optuna. A failure names the file and line that crossed it."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import basset

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> Iterator[tuple[str, str, list[str]]]:
    """(file:line, imported module, imported names) for every absolute import in `package`."""
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield where, alias.name, []
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield where, node.module, [alias.name for alias in node.names]


def test_hpo_imports_only_what_basset_exports() -> None:
    crossings, used = [], set()
    for where, module, names in _imports("hpo"):
        if module == "basset" and names:
            used.update(names)
            crossings += [f"{where} imports {n}" for n in names if n not in basset.__all__]
        elif module.split(".")[0] == "basset":
            crossings.append(f"{where} imports {module} (use `from basset import ...`)")
    assert crossings == []
    assert sorted(set(basset.__all__) - used) == [], "exported but unused by hpo/"


def test_every_export_resolves() -> None:
    missing = [name for name in basset.__all__ if not hasattr(basset, name)]
    assert missing == []


def test_basset_never_imports_hpo_or_optuna() -> None:
    crossings = [
        f"{where} imports {module}"
        for where, module, _ in _imports("basset")
        if module.split(".")[0] in ("hpo", "optuna", "optuna_dashboard")
    ]
    assert crossings == []
