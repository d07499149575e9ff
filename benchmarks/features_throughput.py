"""basset-features throughput: peaks -> merged features + activity table, and sequence extraction.

    python benchmarks/features_throughput.py [--samples 164] [--peaks 100000] [--features 2000000]

Writes synthetic inputs to a temporary folder (removed afterwards): a universe of DNase-like sites
on hg19's chromosome sizes, each sample's BED drawing `--peaks` of them (common sites more often)
with 150 bp peaks jittered around the site. Measured in one run:

1. the project, in a child process (so that its peak memory is its own): every BED read, merged,
   and PREFIX.bed + PREFIX_act.txt written (after a run on a tiny input, which leaves numba's
   cache of the compiled code warm; loading it is counted);
2. the baseline on a subset (chr21 and chr22 of every sample: the same peak density): BED lines
   parsed in Python and merged one Peak object at a time (tests/features_reference.py, Basset's
   procedure as written), scaled per peak; and the project's merge on the same subset (its
   compiled code loaded before);
3. extraction: a genome FASTA of hg19's sizes (60 bp lines), indexed first (timed apart), then
   `--features` windows of 600 bp cut from it, and the FASTA written.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from benchclock import cpu_seconds  # noqa: E402

from basset.data.feature_files import write_activity, write_bed, write_fasta  # noqa: E402
from basset.data.features import collect_intervals, read_sample_table  # noqa: E402
from basset.data.genome import Genome  # noqa: E402
from basset.data.merge import Intervals, merge_intervals  # noqa: E402
from features_reference import reference_merge  # noqa: E402

HG19 = {
    "chr1": 249250621, "chr2": 243199373, "chr3": 198022430, "chr4": 191154276,
    "chr5": 180915260, "chr6": 171115067, "chr7": 159138663, "chr8": 146364022,
    "chr9": 141213431, "chr10": 135534747, "chr11": 135006516, "chr12": 133851895,
    "chr13": 115169878, "chr14": 107349540, "chr15": 102531392, "chr16": 90354753,
    "chr17": 81195210, "chr18": 78077248, "chr19": 59128983, "chr20": 63025520,
    "chr21": 48129895, "chr22": 51304566, "chrX": 155270560, "chrY": 59373566,
}
SUBSET = ("chr21", "chr22")


def write_peaks(folder: Path, n_samples: int, n_peaks: int, n_sites: int) -> Path:
    rng = np.random.default_rng(0)
    names = list(HG19)
    sizes = np.array(list(HG19.values()))
    site_chrom = rng.choice(len(names), n_sites, p=sizes / sizes.sum())
    site_pos = (rng.random(n_sites) * (sizes[site_chrom] - 2000) + 1000).astype(np.int64)
    log_weight = rng.normal(0, 1.5, n_sites)  # a few sites in most samples, most in a few
    lines = []
    for s in range(n_samples):
        keys = log_weight + rng.gumbel(size=n_sites)  # top-k of Gumbel keys: weighted draw
        chosen = np.sort(np.argpartition(-keys, n_peaks)[:n_peaks])
        centre = site_pos[chosen] + rng.normal(0, 25, n_peaks).astype(np.int64)
        bed = folder / f"sample{s}.bed"
        with bed.open("wb") as out:
            out.write(b"".join(
                b"%s\t%d\t%d\n" % (names[c].encode(), p - 75, p + 75)
                for c, p in zip(site_chrom[chosen].tolist(), centre.tolist(), strict=True)
            ))
        lines.append(f"s{s}\t{bed}")
    table = folder / "samples.txt"
    table.write_text("\n".join(lines) + "\n")
    return table


def project_child(table: Path, out_prefix: Path) -> None:
    """The timed project run: read, merge, write the BED and the activity table."""
    start = time.process_time()  # after the imports
    samples = read_sample_table(table)
    intervals = collect_intervals(samples)
    lengths = np.array([HG19[name] for name in intervals.chroms], dtype=np.int64)
    n_peaks = len(intervals.point)
    features = merge_intervals(intervals, lengths, len(samples))
    del intervals
    with open(f"{out_prefix}.bed", "wb") as bed, open(f"{out_prefix}_act.txt", "wb") as act:
        write_bed(bed, features)
        write_activity(act, features, [s.label for s in samples])
    print(n_peaks, len(features), time.process_time() - start)


def run_project(table: Path, folder: Path) -> dict[str, float]:
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(table), str(folder / "out")],
        check=True, capture_output=True, text=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    n_peaks, n_features, work_cpu = done.stdout.split()
    return {
        "wall": time.perf_counter() - start,
        "cpu": float(work_cpu),
        "process_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "rss_gb": after.ru_maxrss / 2**20,
        "peaks": int(n_peaks),
        "features": int(n_features),
        "act_mb": (folder / "out_act.txt").stat().st_size / 2**20,
    }


def baseline(lines: list[bytes], labels: dict[str, int], out: Path) -> dict[str, float]:
    """The straightforward way, CPU seconds per stage: lines parsed one by one, Basset's merge one
    Peak object at a time, then BED and activity-table rows formatted one by one (as
    preprocess_features.py writes them)."""
    cpu = {"start": time.process_time()}
    points = []
    for line in lines:
        sample, chrom, first, last = line.split(b"\t")[:4]
        points.append((chrom.decode(), "+", (int(first) + int(last)) // 2, labels[sample.decode()]))
    cpu["parse"] = time.process_time()
    features = reference_merge(points, HG19, 600, 200)
    cpu["merge"] = time.process_time()
    with (out / "baseline.bed").open("w") as bed, (out / "baseline_act.txt").open("w") as act:
        act.write("\t".join(["", *labels]) + "\n")
        for contig, strand, start, end, active in features:
            bed.write("\t".join([contig, str(start), str(end), ".", "1", strand,
                                 ",".join(map(str, active)) or "."]) + "\n")
            row = [0] * len(labels)
            for index in active:
                row[index] = 1
            act.write("\t".join([f"{contig}:{start}-{end}({strand})", *map(str, row)]) + "\n")
    cpu["write"] = time.process_time()
    return {
        "parse": cpu["parse"] - cpu["start"],
        "merge": cpu["merge"] - cpu["parse"],
        "write": cpu["write"] - cpu["merge"],
        "total": cpu["write"] - cpu["start"],
        "features": len(features),
    }


def project_subset(lines: list[bytes], labels: dict[str, int]) -> tuple[float, float, int]:
    names = list(SUBSET)
    rows = [line.split(b"\t") for line in lines]
    intervals = Intervals(
        names,
        np.array([names.index(r[1].decode()) for r in rows], np.int32),
        np.zeros(len(rows), bool),
        np.array([(int(r[2]) + int(r[3])) // 2 for r in rows], np.int64),
        np.array([labels[r[0].decode()] for r in rows], np.int32),
    )
    lengths = np.array([HG19[n] for n in names])
    merge_intervals(intervals, lengths, len(labels))  # loads the compiled code (not timed)
    start, cpu = time.perf_counter(), time.process_time()
    features = merge_intervals(intervals, lengths, len(labels))
    return time.perf_counter() - start, time.process_time() - cpu, len(features)


def write_genome(path: Path, sizes: dict[str, int]) -> None:
    rng = np.random.default_rng(1)
    letters = np.frombuffer(b"ACGTacgtN", np.uint8)
    with path.open("wb") as out:
        for name, size in sizes.items():
            out.write(b">%s\n" % name.encode())
            for begin in range(0, size, 60 * 500_000):  # 30 Mb at a time
                block = letters[rng.integers(0, 9, min(size - begin, 60 * 500_000), dtype=np.uint8)]
                full = len(block) // 60 * 60
                lines = np.empty((full // 60, 61), np.uint8)
                lines[:, :60] = block[:full].reshape(-1, 60)
                lines[:, 60] = ord("\n")
                out.write(lines.tobytes())
                if full < len(block):
                    out.write(block[full:].tobytes() + b"\n")


def extraction(folder: Path, n_features: int, shrink: int) -> dict[str, float]:
    genome_path = folder / "genome.fa"
    chromosomes = {name: size // shrink for name, size in HG19.items()}
    write_genome(genome_path, chromosomes)
    t = time.perf_counter()
    Genome(genome_path).close()  # builds genome.fa.fai
    index_s = time.perf_counter() - t
    rng = np.random.default_rng(2)
    names = list(chromosomes)
    sizes = np.array(list(chromosomes.values()))
    chrom = np.sort(rng.choice(len(names), n_features, p=sizes / sizes.sum())).astype(np.int32)
    start = (rng.random(n_features) * (sizes[chrom] - 600)).astype(np.int64)
    minus = np.zeros(n_features, bool)
    genome = Genome(genome_path)
    timings: dict[str, float] = {}
    for label, workers in (("serial", 1), ("extract", None)):  # one process, then the default
        t, cpu = time.perf_counter(), cpu_seconds()
        seqs = genome.windows(names, chrom, start, minus, 600, workers=workers)
        timings[label], timings[f"{label}_cpu"] = time.perf_counter() - t, cpu_seconds() - cpu
        if workers == 1:
            del seqs
    genome.close()
    ids = [
        f"{names[c]}:{s}-{s + 600}(+)" for c, s in zip(chrom.tolist(), start.tolist(), strict=True)
    ]
    t, cpu = time.perf_counter(), time.process_time()
    with (folder / "features.fa").open("wb") as out:
        write_fasta(out, ids, seqs)
    fasta_s, fasta_cpu = time.perf_counter() - t, time.process_time() - cpu
    return {
        "index": index_s,
        "genome_gb": sum(chromosomes.values()) / 1e9,
        **timings,
        "fasta": fasta_s,
        "fasta_cpu": fasta_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=164)
    parser.add_argument("--peaks", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=2_500_000)
    parser.add_argument("--features", type=int, default=2_000_000, help="0: no extraction")
    parser.add_argument("--shrink-genome", type=int, default=1, help="divide chromosome sizes "
                        "of the extraction genome by this (a quick trial)")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        project_child(*args.child)
        return
    folder = Path(tempfile.mkdtemp(prefix="features_bench_"))
    try:
        print(
            f"load average before: {os.getloadavg()[0]:.1f}; writing {args.samples} BEDs ...",
            flush=True,
        )
        table = write_peaks(folder, args.samples, args.peaks, args.sites)
        (folder / "warm").mkdir()  # a first run compiles the numba code, or loads it from its cache
        warm = run_project(write_peaks(folder / "warm", 2, 1000, 10_000), folder / "warm")
        project = run_project(table, folder)
        labels = {f"s{i}": i for i in range(args.samples)}
        lines = [
            b"s%d\t" % labels[s.label] + line
            for s in read_sample_table(table)
            for line in subset_lines_of(s.bed)
        ]
        base = baseline(lines, labels, folder)
        sub_wall, sub_cpu, sub_n = project_subset(lines, labels)
        assert base["features"] == sub_n, (base["features"], sub_n)
        scale = project["peaks"] / len(lines)
        print(f"\n{project['peaks']:,} peaks of {args.samples} samples -> {project['features']:,} "
              f"features; activity table {project['act_mb']:.0f} MiB")
        print("| what | peaks | CPU s | wall s | peak RSS GiB | x baseline (CPU) |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| baseline on {'+'.join(SUBSET)}: parse / merge / write | {len(lines):,} | "
              f"{base['parse']:.2f} / {base['merge']:.2f} / {base['write']:.2f} | | | |")
        print(
            f"| baseline end to end, scaled to all peaks | {project['peaks']:,} | "
            f"{base['total'] * scale:.0f} "
            "| | | 1 |"
        )
        print(
            f"| project merge only, same subset (vs baseline merge) | {len(lines):,} | "
            f"{sub_cpu:.2f} "
            f"| {sub_wall:.2f} | | {base['merge'] / sub_cpu:.1f} |"
        )
        print(f"| project end to end: read + merge + BED + activity table | {project['peaks']:,} "
              f"| {project['cpu']:.1f} | {project['wall']:.1f} | {project['rss_gb']:.2f} "
              f"| {base['total'] * scale / project['cpu']:.1f} |")
        print(f"(the project's process: {project['process_cpu']:.1f} s CPU with its imports; the "
              f"work's CPU includes loading the compiled code from numba's cache, which a run on "
              f"2 x 1,000 peaks just before filled: {warm['cpu']:.1f} s CPU)")
        if args.features == 0:
            return
        ext = extraction(folder, args.features, args.shrink_genome)
        n = args.features
        print(f"\nextraction of {n:,} x 600 bp from a {ext['genome_gb']:.2f} Gb genome: index "
              f"built in {ext['index']:.1f} s wall (once)")
        for label, what in (
            ("serial", "one process"),
            ("extract", "the default (a process per core)"),
        ):
            print(f"  {what}: {ext[label]:.1f} s wall ({n / ext[label]:,.0f} seqs/s), "
                  f"{ext[label + '_cpu']:.1f} s CPU with its children")
        print(f"  default / one process: {ext['serial'] / ext['extract']:.2f}x the sequences per "
              f"second; FASTA written in {ext['fasta_cpu']:.1f} s CPU, {ext['fasta']:.1f} s wall")
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def subset_lines_of(bed: Path) -> list[bytes]:
    wanted = tuple(name.encode() + b"\t" for name in SUBSET)
    with bed.open("rb") as handle:
        return [line for line in handle if line.startswith(wanted)]


if __name__ == "__main__":
    main()
