"""HPO throughput: one trial at a time without pruning vs the service's defaults, same budget.

Both run the real `basset-hpo run` on the demo study (written to a temporary folder with its
data at a reduced size) for the same wall-clock budget (`--timeout`: no trial starts after it;
running trials finish and count in the elapsed time):

- baseline: one worker (`--workers 1` on the CPU, `--trials-per-gpu 1` on a GPU), pruner none;
- service: the study's defaults (ASHA pruning; on the CPU its two single-threaded workers,
  on a GPU `--trials-per-gpu auto`).

    python benchmarks/hpo_throughput.py                      # CPU, 150 s each
    python benchmarks/hpo_throughput.py --gpus 0 --budget 600 --n-seqs 6000

Prints finished trials per hour, the ratio, and the best validation AUROC each reached.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from basset.data.demo import make_demo
from hpo.config import PACKAGED_STUDIES


@dataclass
class Outcome:
    seconds: float
    complete: int
    pruned: int
    failed: int
    best_auroc: float

    @property
    def finished(self) -> int:
        return self.complete + self.pruned

    @property
    def per_hour(self) -> float:
        return 3600 * self.finished / self.seconds


def study_file(folder: Path, name: str, data: Path, pruned: bool) -> Path:
    """The packaged demo study with its name, data and (for the baseline) pruner changed."""
    text = (PACKAGED_STUDIES / "demo.toml").read_text()
    changes = [('name = "demo"', f'name = "{name}"'),
               ('data = "studies/demo_data.h5"', f'data = "{data}"')]
    if not pruned:
        changes.append(('type = "asha"', 'type = "none"'))  # [pruner]'s (the sampler's is tpe)
    for old, new in changes:
        if old not in text:
            raise RuntimeError(f"demo.toml changed: cannot find {old!r}")
        text = text.replace(old, new)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def run(
    folder: Path, name: str, data: Path, budget: float, pruned: bool, extra: list[str]
) -> Outcome:
    study = study_file(folder, name, data, pruned)
    url = f"sqlite:///{folder / name}.db"
    arguments = ["run", "--study", str(study), "--storage", url, "--n-trials", "100000",
                 "--timeout", str(budget), "-q", *extra]
    print("$ basset-hpo", " ".join(arguments), flush=True)
    # basset-hpo's own main, run by this interpreter (not whichever basset-hpo is on the PATH)
    command = [sys.executable, "-c", "import sys; from hpo.cli import main; sys.exit(main())",
               *arguments]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=folder, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    trials = optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    values = [t.value for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    return Outcome(seconds, count[TrialState.COMPLETE], count[TrialState.PRUNED],
                   count[TrialState.FAIL], max(values, default=float("nan")))


def compare(folder: Path, data: Path, budget: float, gpus: str = "none") -> tuple[Outcome, Outcome]:
    """(one at a time without pruning, the service's defaults), their studies and databases in
    `folder`, on the CPU (gpus "none") or on one GPU (its id)."""
    cpu = gpus == "none"
    base_flags = ["--gpus", "none", "--workers", "1"] if cpu else ["--gpus", gpus,
                                                                  "--trials-per-gpu", "1"]
    service_flags = ["--gpus", gpus]  # the study's CPU workers, or --trials-per-gpu auto
    return (run(folder, "baseline", data, budget, False, base_flags),
            run(folder, "service", data, budget, True, service_flags))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=150.0, help="seconds per run (--timeout)")
    parser.add_argument("--gpus", default="none", help="none (CPU, default) or a GPU id like 0")
    parser.add_argument("--n-seqs", type=int, default=3000, help="demo data set size")
    parser.add_argument("--seq-len", type=int, default=200)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        data = make_demo(Path(tmp) / "demo.h5", n_seqs=args.n_seqs, seq_len=args.seq_len)
        base, ours = compare(Path(tmp), data, args.budget, args.gpus)
    print(f"budget {args.budget:.0f} s per run, demo data {args.n_seqs} x {args.seq_len} bp, "
          f"device {'cpu' if args.gpus == 'none' else 'cuda:' + args.gpus}")
    print(f"{'run':<34} {'wall s':>7} {'complete':>8} {'pruned':>7} {'failed':>7} "
          f"{'trials/h':>9} {'best AUROC':>10}")
    for label, o in (("one at a time, no pruning", base), ("service defaults", ours)):
        print(f"{label:<34} {o.seconds:>7.0f} {o.complete:>8} {o.pruned:>7} {o.failed:>7} "
              f"{o.per_hour:>9.0f} {o.best_auroc:>10.4f}")
    ratio = ours.per_hour / base.per_hour if base.per_hour else float("inf")
    print(
        f"trials/h ratio {ratio:.2f}x, best AUROC difference "
        f"{ours.best_auroc - base.best_auroc:+.4f}"
    )


if __name__ == "__main__":
    main()
