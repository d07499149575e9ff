"""The benchmark's data sets, made on first use in the output folder: the demo set, the
other_data.py kinds (motifs: 300 bp, 10 targets; long: 600 bp, 24 targets), and the Oct4/MafK
ChIP-seq peaks (200 bp, 2 targets) from a folder holding oct4_mafk.fa and oct4_mafk_act.txt."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from other_data import make_other

from basset import make_demo

SETS = ("demo", "motifs", "oct4_mafk", "long600")


def make_set(name: str, out: Path, *, n_seqs: int, oct4_mafk: Path | None) -> Path:
    path = out / f"{name}.h5"
    if path.exists():
        return path
    makers: dict[str, Callable[[], object]] = {
        "demo": lambda: make_demo(path, n_seqs=n_seqs, seed=3),
        "motifs": lambda: make_other(path, kind="motifs", n_seqs=n_seqs, seed=7),
        "words": lambda: make_other(path, kind="words", n_seqs=n_seqs, seed=7),
        "long600": lambda: make_other(path, kind="long", n_seqs=n_seqs, seed=7),
        "oct4_mafk": lambda: _oct4_mafk(path, oct4_mafk),
    }
    if name not in makers:
        raise SystemExit(f"unknown data set {name!r} (known: {', '.join(makers)})")
    makers[name]()
    return path


def _oct4_mafk(path: Path, folder: Path | None) -> None:
    if folder is None or not (folder / "oct4_mafk.fa").is_file():
        raise SystemExit("oct4_mafk needs --oct4-mafk FOLDER (oct4_mafk.fa, oct4_mafk_act.txt)")
    subprocess.run(["basset-preprocess", str(folder / "oct4_mafk.fa"),
                    str(folder / "oct4_mafk_act.txt"), str(path), "-v", "0.15", "-t", "0.15",
                    "-s", "1", "--dtype", "uint8"], check=True, capture_output=True)
