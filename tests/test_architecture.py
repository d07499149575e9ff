"""The rooms of basset/ (the README's layout): imports go from a higher room to a lower
one only, no module imports itself back through others, argparse lives in the CLI rooms, and the
data room imports no torch. A failure names the file and line that broke the rule."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a module may import from its own room and the rooms before it.
ROOMS = ("ground", "data", "nn", "training", "interpret", "cli")
GROUND = {"errors", "params", "device", "fileio", "lazy", "progress"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "face"  # basset/__init__.py: the seam may name anything
    return "ground" if parts[1] in GROUND else parts[1]


def _basset_imports() -> list[tuple[str, str, str]]:
    """(file:line, importing module, imported basset module) for every import in basset/."""
    found = []
    for path in sorted((ROOT / "basset").rglob("*.py")):
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            found += [(where, module, t) for t in targets if t.split(".")[0] == "basset"]
    return found


def test_every_module_is_in_a_room() -> None:
    rooms = {_room(_module_name(p)) for p in (ROOT / "basset").rglob("*.py")}
    assert rooms <= {"face", *ROOMS}, sorted(rooms - {"face", *ROOMS})


def test_no_arrow_from_a_lower_room_to_a_higher_one() -> None:
    upward = []
    for where, source, target in _basset_imports():
        low, high = _room(source), _room(target)
        if "face" in (low, high):
            continue
        if ROOMS.index(high) > ROOMS.index(low):
            upward.append(f"{where}: {source} ({low}) imports {target} ({high})")
    assert upward == []


def test_no_import_circle() -> None:
    graph: dict[str, set[str]] = {}
    for _, source, target in _basset_imports():
        if _room(source) != "face" and _room(target) != "face":
            graph.setdefault(source, set()).add(target)
    circles, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            circles.append(" -> ".join(path[path.index(node):] + [node]))
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    assert circles == []


def test_argparse_only_in_the_command_line_rooms() -> None:
    outside = []
    for path in sorted([*(ROOT / "basset").rglob("*.py"), *(ROOT / "hpo").rglob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("basset/cli/") or rel.startswith("hpo/cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if "argparse" in names:
                outside.append(f"{rel}:{node.lineno}")
    assert outside == []


def test_the_data_room_and_the_package_face_import_no_torch() -> None:
    code = (
        "import sys, basset, basset.data, basset.data.h5read, basset.data.preprocess, "
        "basset.data.features, basset.data.repair, basset.data.demo\n"
        "print(sorted(m for m in ('torch', 'optuna') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
