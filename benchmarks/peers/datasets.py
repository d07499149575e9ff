"""The benchmark's data sets, made on first use in the output folder: the demo set, the
other_data.py kinds (motifs: 300 bp, 10 targets; long: 600 bp, 24 targets), and the Oct4/MafK
ChIP-seq peaks (200 bp, 2 targets) from a folder holding oct4_mafk.fa and oct4_mafk_act.txt
(`n_seqs` of them drawn at random, all with 0). Splits: 2/3 train, 1/6 valid, 1/6 test (the
demo: its own 4/6, 1/6, 1/6; Oct4/MafK: 70/15/15 %)."""

from __future__ import annotations

import random
import subprocess
import tempfile
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
        "oct4_mafk": lambda: _oct4_mafk(path, oct4_mafk, n_seqs),
    }
    if name not in makers:
        raise SystemExit(f"unknown data set {name!r} (known: {', '.join(makers)})")
    makers[name]()
    return path


def _oct4_mafk(path: Path, folder: Path | None, n_seqs: int) -> None:
    if folder is None or not (folder / "oct4_mafk.fa").is_file():
        raise SystemExit("oct4_mafk needs --oct4-mafk FOLDER (oct4_mafk.fa, oct4_mafk_act.txt)")
    records = (folder / "oct4_mafk.fa").read_text().split(">")[1:]
    header, *rows = (folder / "oct4_mafk_act.txt").read_text().splitlines()
    keep = sorted(random.Random(1).sample(range(len(records)), n_seqs or len(records)))
    with tempfile.TemporaryDirectory() as tmp:
        fasta, table = Path(tmp) / "peaks.fa", Path(tmp) / "act.txt"
        fasta.write_text("".join(">" + records[i] for i in keep))
        table.write_text("\n".join([header, *(rows[i] for i in keep)]) + "\n")
        subprocess.run(["basset-preprocess", str(fasta), str(table), str(path), "-v", "0.15",
                        "-t", "0.15", "-s", "1", "--dtype", "uint8"], check=True,
                       capture_output=True)
