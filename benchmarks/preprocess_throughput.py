"""basset-preprocess throughput: lookup-table encoding vs a per-character Python loop, and the
whole FASTA + table -> HDF5 conversion.

    python benchmarks/preprocess_throughput.py [--n 100000] [--length 600] [--loop-n 5000]

Writes a random FASTA and activity table to a temporary folder. The per-character loop (the way
seq_hdf5.py's dna_one_hot encodes) runs on a subset (--loop-n) and is scaled per sequence.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from basset.data.fasta import read_fasta
from basset.data.onehot import encode_codes, onehot_from_codes
from basset.data.preprocess import preprocess

PROJECT_N = 2_000_000


def write_inputs(folder: Path, n: int, length: int, n_targets: int = 10) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    letters = np.frombuffer(b"ACGTacgtN", dtype=np.uint8)
    fasta, table = folder / "bench.fa", folder / "bench_act.txt"
    with fasta.open("wb") as fa, table.open("w") as act:
        act.write("\t" + "\t".join(f"t{i}" for i in range(n_targets)) + "\n")
        for start in range(0, n, 10_000):
            stop = min(n, start + 10_000)
            seqs = letters[rng.integers(0, len(letters), size=(stop - start, length))]
            labels = rng.integers(0, 2, size=(stop - start, n_targets))
            for i, (seq, label) in enumerate(zip(seqs, labels, strict=True), start):
                fa.write(b">seq%d\n%s\n" % (i, seq.tobytes()))
                act.write(f"seq{i}\t" + "\t".join(map(str, label)) + "\n")
    return fasta, table


def loop_onehot(seqs: list[bytes], length: int) -> np.ndarray:
    """The baseline: one Python step per character, float16 (N, 4, L) with N = 0.25."""
    index = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = np.zeros((len(seqs), 4, length), dtype=np.float16)
    for i, seq in enumerate(seqs):
        for j, char in enumerate(seq.decode().upper()):
            if char in index:
                out[i, index[char], j] = 1
            else:
                out[i, :, j] = 0.25
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=600)
    parser.add_argument("--loop-n", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fasta, table_path = write_inputs(Path(tmp), args.n, args.length)

        seqs: list[bytes] = []
        read = timed(lambda: seqs.extend(seq for _, seq in read_fasta(fasta)))
        table = min(
            (timed(lambda: table_onehot(seqs, args.length)) for _ in range(3)), key=lambda t: t.cpu
        )
        loop = timed(lambda: loop_onehot(seqs[: args.loop_n], args.length))
        loop = Timing(loop.wall * args.n / args.loop_n, loop.cpu * args.n / args.loop_n)
        seqs.clear()
        whole = timed(lambda: preprocess(fasta, table_path, Path(tmp) / "bench.h5"))

    rows = [
        ("per-character loop -> float16 one-hot", loop),
        ("lookup table -> float16 one-hot", table),
        (
            "read FASTA + lookup table -> one-hot",
            Timing(read.wall + table.wall, read.cpu + table.cpu),
        ),
        ("basset-preprocess end to end (float16 HDF5)", whole),
    ]
    load = os.getloadavg()[0]
    print(
        f"{args.n:,} sequences x {args.length} bp; load average {load:.1f}, {os.cpu_count()} cores"
    )
    projected = f"{PROJECT_N:,} seqs"
    print(f"{'method':<46}{'wall s':>8}{'cpu s':>8}{'seqs/s':>10}{'x loop':>8}{projected:>15}")
    for name, t in rows:
        print(
            f"{name:<46}{t.wall:>8.2f}{t.cpu:>8.2f}{args.n / t.wall:>10,.0f}"
            f"{loop.cpu / t.cpu:>8.1f}{t.wall * PROJECT_N / args.n:>14.0f}s"
        )
    print("x loop compares CPU seconds (robust when other processes share the cores); the")
    print("end-to-end run compresses on several threads, so its CPU seconds exceed its wall time.")


@dataclass
class Timing:
    wall: float
    cpu: float


def timed(func: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def table_onehot(seqs: list[bytes], length: int, block: int = 4096) -> None:
    """Encode, then expand to float16 one-hot block by block, as basset-preprocess writes."""
    codes = encode_codes(seqs, length)
    for start in range(0, len(codes), block):
        onehot_from_codes(codes[start : start + block])


if __name__ == "__main__":
    main()
