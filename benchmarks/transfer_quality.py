"""Transfer learning against training from scratch, at the same budget, on the small demo set.

Both studies run the real `basset-hpo run` on `basset-demo-data --set transfer` (600 training
sequences, 8 targets) with the same trial budget, epoch cap, stop rule, pruner and workers:

- transfer: the packaged demo-transfer study (every trial starts from a model trained on the
  demo set; its space: the head, dropouts, learning rate, batch size, optimiser, freeze_conv,
  epochs);
- scratch: the packaged demo study's space (architecture included) from random weights.

Printed per study: wall time, trials complete/pruned, the best trial's validation AUROC and its
test AUROC (scored by `run` at its end); then transfer - scratch and the wall-time ratio. The
source model is made once first (its time is printed on its own line: a cost paid once per
source, not per study).

    python benchmarks/transfer_quality.py --n-trials 12 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import tempfile
import time
from pathlib import Path

import optuna
import torch

from basset.data.demo import make_demo
from basset.training.demo_source_model import make_source_model
from hpo.cli import main as hpo_main
from hpo.config import PACKAGED_STUDIES
from hpo.evaluate import load_scores


def _set(text: str, key: str, value: str) -> str:
    """The study file with top-level `key = value` (replaced, or added at the top)."""
    line = f"{key} = {value}"
    pattern = rf"^{key} = .*$"
    if re.search(pattern, text, flags=re.M):
        return re.sub(pattern, line, text, count=1, flags=re.M)
    return f"{line}\n{text}"


def study_files(
    folder: Path, data: Path, seed: Path, n_trials: int, max_epochs: int
) -> dict[str, Path]:
    files = {}
    for name, packaged in (("transfer", "demo-transfer"), ("scratch", "demo")):
        text = (PACKAGED_STUDIES / f"{packaged}.toml").read_text()
        for key, value in (
            ("name", f'"{name}"'),
            ("data", f'"{data}"'),
            ("n_trials", str(n_trials)),
            ("max_epochs", str(max_epochs)),
            ("generate_demo_data", "false"),
        ):
            text = _set(text, key, value)
        if name == "transfer":
            text = _set(text, "seed_model", f'"{seed}"')
            text = text.replace("max_epochs = [2, 10]", f"max_epochs = [2, {max_epochs}]")
        files[name] = folder / f"{name}.toml"
        files[name].write_text(text)
    return files


def run(study: Path, url: str, workers: int) -> dict[str, float]:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # run's own summary: the table says it
        code = hpo_main(["run", "--study", str(study), "--storage", url, "--workers",
                         str(workers), "-q"])
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"basset-hpo run --study {study} exited {code}")
    trials = optuna.load_study(study_name=study.stem, storage=url).trials
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value or 0.0)
    scores = load_scores(optuna.storages.RDBStorage(url), study.stem).get(best.number)
    return {
        "wall": wall,
        "complete": sum(t.state.name == "COMPLETE" for t in trials),
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "valid": float(best.value or 0.0),
        "test": scores.auroc if scores is not None else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=12, help="trials per study (default 12)")
    parser.add_argument("--max-epochs", type=int, default=10, help="epoch cap of both (default 10)")
    parser.add_argument("--workers", type=int, default=2, help="CPU workers per study (default 2)")
    parser.add_argument("--folder", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="transfer_quality_"))
    folder.mkdir(parents=True, exist_ok=True)
    os.chdir(folder)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))
    data = make_demo(folder / "small.h5", preset="transfer")
    seed = folder / "source" / "model_best.pt"
    start = time.perf_counter()
    if not seed.exists():
        make_source_model(seed)
    print(f"source model ({seed}): {time.perf_counter() - start:.0f} s (paid once per source)")
    url = f"sqlite:///{folder}/studies.db"
    files = study_files(folder, data, seed, args.n_trials, args.max_epochs)
    results = {name: run(path, url, args.workers) for name, path in files.items()}
    print(f"{args.n_trials} trials each, max_epochs {args.max_epochs}, {args.workers} CPU "
          f"workers, 600 training sequences, torch {torch.__version__}, load "
          f"{os.getloadavg()[0]:.1f}")
    print("| study | wall s | complete | pruned | best valid AUROC | its test AUROC |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['wall']:.0f} | {r['complete']:.0f} | {r['pruned']:.0f} | "
              f"{r['valid']:.4f} | {r['test']:.4f} |")
    t, s = results["transfer"], results["scratch"]
    print(f"transfer - scratch: test AUROC {t['test'] - s['test']:+.4f} (goal >= +0.05), "
          f"valid AUROC {t['valid'] - s['valid']:+.4f}; wall time x{t['wall'] / s['wall']:.2f}")


if __name__ == "__main__":
    main()
