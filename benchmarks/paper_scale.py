"""Paper-scale rehearsal (issue 26 item 6): the packaged `dnase` study on a file of Basset's shape.

    python benchmarks/paper_scale.py --out /tmp/ps                   # 2,071,886 x 600 x 164
    python benchmarks/paper_scale.py --out /tmp/ps --dhs             # 3.59M x 600 x 733 too
    python benchmarks/paper_scale.py --out /tmp/ps --shapes dhs --workers 8 --no-epoch-run --keep
    python benchmarks/paper_scale.py --out /tmp/ps --workers 2 4 --budget 150

Writes a synthetic, learnable HDF5 of that shape (uint8 one-hot, N = zeros, to save disk and
time: the trainer reads it exactly as float16; targets are planted motifs: each of 24 random
8-14 bp motifs is planted in 10-40% of the sequences, each target is one motif's presence with
its own 2-10% label noise), then runs `basset-hpo run --study dnase --data FILE --workers W`
for each W, and once more with evaluation per full epoch (the study without `eval_every`), each
for `--budget` seconds of wall time after its data are loaded (then SIGTERM twice: the trials
are requeued). While it runs it samples /proc every second and the study's storage every few
seconds, and prints per run:

- load: seconds from the start of `run` until the shared copy is ready (its manifest written);
- memory: the peak over the run of the workers' summed RSS and PSS, their shared-memory part
  (the pages of the data copy they touched, counted once across them by PSS) and private part;
  the host memory they take (the whole copy once + their private pages), against one copy of
  the data (uint8 codes + uint8 targets) and what one worker held before issue 26 (uint8 codes
  + float32 targets); the supervisor's peak RSS (it maps the copy while it writes it);
- the first evaluation and the first pruned trial (seconds from the start), or the projection
  from the running trials' progress (sequences per second, time to the next evaluation);
- trials complete / pruned / running at the end, sequences per second per worker.

Nothing is timed against a threshold; the figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from basset import ArgParser
from hpo.config import PACKAGED_STUDIES
from hpo.interval import ATTR, TIMING_ATTR
from hpo.progress import requeued

PAPER = {"rows": 2_071_886, "valid": 70_000, "test": 71_886, "targets": 164}
DHS = {"rows": 3_591_898, "valid": 70_000, "test": 71_886, "targets": 733}
SEQ_LEN, MOTIFS, BLOCK = 600, 24, 65_536


def write_synthetic(path: Path, rows: int, valid: int, test: int, targets: int,
                    seed: int = 0) -> float:
    """The HDF5 (uint8 one-hot (N,4,1,L), uint8 targets); seconds it took."""
    start, rng = time.perf_counter(), np.random.default_rng(seed)
    motifs = [rng.integers(0, 4, rng.integers(8, 15)).astype(np.uint8) for _ in range(MOTIFS)]
    rates = rng.uniform(0.1, 0.4, MOTIFS)
    motif_of, noise = rng.integers(0, MOTIFS, targets), rng.uniform(0.02, 0.1, targets)
    sizes = {"train": rows - valid - test, "valid": valid, "test": test}
    with h5py.File(path, "w") as h5:
        for name, n in sizes.items():
            onehot = h5.create_dataset(f"{name}_in", (n, 4, 1, SEQ_LEN), np.uint8,
                                       chunks=(256, 4, 1, SEQ_LEN))
            out = h5.create_dataset(f"{name}_out", (n, targets), np.uint8)
            for at in range(0, n, BLOCK):
                m = min(BLOCK, n - at)
                codes = rng.integers(0, 4, (m, SEQ_LEN), dtype=np.uint8)
                present = np.zeros((m, MOTIFS), bool)
                for k, motif in enumerate(motifs):
                    hit = np.flatnonzero(rng.random(m) < rates[k])
                    pos = rng.integers(0, SEQ_LEN - len(motif), len(hit))
                    codes[hit[:, None], pos[:, None] + np.arange(len(motif))] = motif
                    present[hit, k] = True
                flips = rng.random((m, targets)) < noise
                out[at : at + m] = (present[:, motif_of] ^ flips).astype(np.uint8)
                onehot[at : at + m] = (codes[:, None, None, :] ==
                                       np.arange(4, dtype=np.uint8)[None, :, None, None])
        h5.create_dataset("target_labels", data=np.array([f"t{i}" for i in range(targets)], "S"))
    return time.perf_counter() - start


def data_bytes(rows: int, targets: int, target_bytes: int) -> int:
    return rows * (SEQ_LEN + target_bytes * targets)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            # workers: forked (the run's own command line) or spawned; not the tracker
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmd:
                kids.append(int(entry.name))
    return kids


def _rollup(pid: int) -> dict[str, int]:
    """smaps_rollup in bytes (Rss, Pss, Pss_Anon, Pss_Shmem, ...); {} for a gone process."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return {}
    found = re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)
    return {key: int(kb) * 1024 for key, kb in found}


@dataclass
class Sample:
    """Peaks over a run (bytes) and the study's state."""

    peak: dict[str, int] = field(default_factory=dict)
    workers: int = 0
    loaded_s: float | None = None
    first_eval_s: float | None = None
    first_pruned_s: float | None = None
    counts: dict[str, int] = field(default_factory=dict)
    rates: dict[int, float] = field(default_factory=dict)  # trial -> seq/s (its progress)
    next_eval_s: dict[int, float] = field(default_factory=dict)
    low_available: int = 2**62  # the host's lowest MemAvailable during the run
    interval: dict[str, Any] = field(default_factory=dict)  # the study's eval_every (+ timing)


def mem_available() -> int:
    """The host's MemAvailable in bytes."""
    found = re.search(r"^MemAvailable:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    return int(found.group(1)) * 1024 if found else 0


def _watch_memory(run: subprocess.Popen[bytes], shm: Path, start: float, sample: Sample,
                  stop: threading.Event) -> None:
    while not stop.wait(1.0):
        sample.low_available = min(sample.low_available, mem_available())
        if sample.loaded_s is None and (shm / "manifest.json").exists():
            sample.loaded_s = time.monotonic() - start
        pids = _children(run.pid)
        sums: dict[str, int] = {}
        for pid in pids:
            for key, value in _rollup(pid).items():
                sums[key] = sums.get(key, 0) + value
        sums["supervisor_rss"] = _rollup(run.pid).get("Rss", 0)
        if pids and sums.get("Rss", 0) >= sample.peak.get("Rss", 0):
            sample.workers = len(pids)
        for key, value in sums.items():
            sample.peak[key] = max(sample.peak.get(key, 0), value)


def _watch_study(url: str, start: float, sample: Sample) -> None:
    import optuna  # the benchmark's parent process only

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        study = optuna.load_study(study_name="dnase", storage=url)
        trials = study.get_trials(deepcopy=False)
        sample.interval = {key: study.user_attrs[key] for key in (ATTR, TIMING_ATTR)
                           if key in study.user_attrs}
    except Exception:  # not created yet, or locked for a moment
        return
    now = time.monotonic() - start
    replaced = requeued(trials)  # interrupted at the end and requeued: not failures
    sample.counts = {}
    for t in trials:
        state = "REQUEUED" if t.number in replaced else t.state.name
        sample.counts[state] = sample.counts.get(state, 0) + 1
        if t.intermediate_values and sample.first_eval_s is None:
            sample.first_eval_s = now
        if t.state.name == "PRUNED" and sample.first_pruned_s is None:
            sample.first_pruned_s = now
        progress = t.user_attrs.get("progress")
        if t.state.name == "RUNNING" and isinstance(progress, dict):
            sample.rates[t.number] = float(progress["seqs_per_sec"])
            if progress.get("next_eval_s") is not None:
                sample.next_eval_s[t.number] = now + float(progress["next_eval_s"])


def run_study(data: Path, devices: list[str], budget: float, folder: Path, per_epoch: bool,
              mem_cap: float, min_available: float) -> Sample:
    """`basset-hpo run --study dnase DEVICES` (["--workers", "2"], ["--gpus", "0"]) in `folder`
    for `budget` s after its load; its figures."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "studies").mkdir(parents=True)
    study = (PACKAGED_STUDIES / "dnase.toml").read_text()
    if per_epoch:  # Basset's rhythm: evaluate after every full epoch
        study = re.sub(r"^eval_(every|seconds|subset) = .*$", "", study, flags=re.M)
    (folder / "studies" / "dnase.toml").write_text(study)
    url = f"sqlite:///{folder}/studies/dnase.db"
    # basset-hpo's own main, run by this interpreter (a machine running from the tree has no
    # basset-hpo script)
    cmd = [sys.executable, "-c", "import sys; from hpo.cli import main; sys.exit(main())",
           "run", "--study", "dnase", "--data", str(data), *devices, "-q"]
    start = time.monotonic()
    run = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL,
                           stderr=open(folder / "run.log", "wb"), start_new_session=True)
    shm = Path("/dev/shm") / f"basset-data-dnase-{run.pid}"
    sample, stop = Sample(), threading.Event()
    watcher = threading.Thread(target=_watch_memory, args=(run, shm, start, sample, stop))
    watcher.start()
    try:
        while run.poll() is None:
            time.sleep(3.0)
            _watch_study(url, start, sample)
            over = sample.peak.get("Pss", 0) > mem_cap
            short = sample.low_available < min_available
            if over or short or (sample.loaded_s is not None and time.monotonic() - start
                                 > sample.loaded_s + budget):
                if over:
                    print(f"  stopped: the workers' PSS passed {mem_cap / 2**30:.1f} GiB")
                if short:
                    print(f"  stopped: the host's MemAvailable fell under "
                          f"{min_available / 2**30:.1f} GiB")
                break
        _stop(run)
        _watch_study(url, start, sample)
    finally:
        stop.set()
        watcher.join()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    return sample


def _stop(run: subprocess.Popen[bytes]) -> None:
    """SIGTERM twice (the second abandons the interval: trials are requeued), then wait."""
    for _ in range(2):
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            time.sleep(1.5)
    try:
        run.wait(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def report(name: str, s: Sample, copy: int, before: int) -> dict[str, Any]:
    gib = 2**30
    row = {
        "run": name, "workers": s.workers, "load_s": s.loaded_s,
        "sum_rss_gib": s.peak.get("Rss", 0) / gib, "sum_pss_gib": s.peak.get("Pss", 0) / gib,
        "shared_pss_gib": s.peak.get("Pss_Shmem", 0) / gib,
        "private_pss_gib": s.peak.get("Pss_Anon", 0) / gib,
        # host memory of the workers: the copy (all of it in /dev/shm, touched or not) once, and
        # every worker's own pages (PSS without its share of the copy)
        "host_gib": (copy + s.peak.get("Pss", 0) - s.peak.get("Pss_Shmem", 0)) / gib,
        "supervisor_rss_gib": s.peak.get("supervisor_rss", 0) / gib,
        "copy_gib": copy / gib, "one_worker_before_gib": before / gib,
        "first_eval_s": s.first_eval_s, "first_pruned_s": s.first_pruned_s,
        "projected_first_eval_s": min(s.next_eval_s.values(), default=None),
        "counts": s.counts, "seqs_per_sec_per_worker": sorted(s.rates.values()),
        "interval": s.interval,
        "lowest_mem_available_gib": s.low_available / gib,
    }
    print(json.dumps(row, default=float))
    return row


def main() -> None:
    parser = ArgParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the files and runs")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--budget", type=float, default=150.0,
                        help="wall seconds per run after its data are loaded")
    parser.add_argument("--epoch-budget", type=float, default=90.0,
                        help="the same for the run with evaluation per full epoch")
    parser.add_argument("--dhs", action="store_true", help="also write the DHS index's shape")
    parser.add_argument("--shapes", nargs="+", choices=("paper", "dhs"),
                        help="the shapes to run (default: paper, and dhs with --dhs)")
    parser.add_argument("--no-epoch-run", action="store_true",
                        help="skip the run with evaluation per full epoch")
    parser.add_argument("--min-available-gib", type=float, default=3.0,
                        help="stop a run when the host's MemAvailable falls under this")
    parser.add_argument("--mem-cap-gib", type=float, default=10.0,
                        help="stop a run whose workers' summed PSS passes this")
    parser.add_argument("--keep", action="store_true", help="keep the HDF5 files")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_cli(None)
    args.out.mkdir(parents=True, exist_ok=True)
    known = {"paper": PAPER, "dhs": DHS}
    names = args.shapes or ["paper"] + (["dhs"] if args.dhs else [])
    shapes = [(name, known[name]) for name in names]
    rows = []
    for label, shape in shapes:
        path = args.out / f"{label}.h5"
        if not path.exists():
            seconds = write_synthetic(path, **shape)
            print(f"{label}: wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in "
                  f"{seconds:.0f} s")
        copy = data_bytes(shape["rows"], shape["targets"], 1)
        before = data_bytes(shape["rows"], shape["targets"], 4)
        runs = [(f"{label} --workers {w}", w, False, args.budget) for w in args.workers]
        if not args.no_epoch_run:
            runs.append((f"{label} --workers {args.workers[0]}, per epoch", args.workers[0],
                         True, args.epoch_budget))
        for name, workers, per_epoch, budget in runs:
            sample = run_study(path, ["--workers", str(workers)], budget, args.out / "run",
                               per_epoch, args.mem_cap_gib * 2**30,
                               args.min_available_gib * 2**30)
            rows.append(report(name, sample, copy, before))
        if not args.keep:
            path.unlink()
    (args.out / "paper_scale.json").write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
