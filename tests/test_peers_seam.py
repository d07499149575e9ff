"""benchmarks/hpo_peers.py's engines drive the trainer through basset's public API only: no
module of benchmarks/peers/ imports hpo or a basset submodule, every `from basset import` name
is exported, and the modules import in a process where importing hpo fails (the Ray Tune and
SMAC3 ones where those libraries are installed: the [bench] extra)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import basset

ROOT = Path(__file__).resolve().parents[1]
PEERS = sorted((ROOT / "benchmarks" / "peers").glob("*.py"))
OPTIONAL = {"ray_engine": "ray", "smac_engine": "smac"}


def test_engines_import_only_basset_exports() -> None:
    crossings = []
    assert len(PEERS) >= 6
    for path in PEERS:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                modules = [(alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [(node.module, [alias.name for alias in node.names])]
            else:
                continue
            for module, names in modules:
                top = module.split(".")[0]
                if top == "hpo":
                    crossings.append(f"{where} imports {module}")
                elif top == "basset" and module != "basset":
                    crossings.append(f"{where} imports {module} (use `from basset import ...`)")
                elif module == "basset":
                    crossings += [f"{where} imports {n}" for n in names
                                  if n not in basset.__all__]
    assert crossings == []


BLOCK_HPO = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "hpo" or name.startswith("hpo."):
            raise ImportError(f"{name} is forbidden to the benchmark's engines")
        return None
sys.meta_path.insert(0, Block())
sys.path.insert(0, "benchmarks")
for name in sys.argv[1:]:
    __import__(f"peers.{name}")
print("imported", len(sys.argv) - 1)
"""


def test_engines_import_without_hpo() -> None:
    names = [p.stem for p in PEERS if p.stem != "__init__"
             and (p.stem not in OPTIONAL or importlib.util.find_spec(OPTIONAL[p.stem]))]
    done = subprocess.run([sys.executable, "-c", BLOCK_HPO, *names], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"imported {len(names)}"
