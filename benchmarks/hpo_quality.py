"""HPO quality: what each approach selects on the demo data, and how that model does on the
test split (never used for selection), in one run on the same machine.

Rows:
- kmer-lr: 6-mer counts, one scikit-learn logistic regression per target, C picked on the
  validation split from 1e-3, 1e-2, 1e-1 (the three fits are its "trials");
- reference: the demo study's enqueued reference (the paper's architecture, scaled) trained as
  Basset trains (no -rc) to stagnation (stagnant_t 10, Basset's default);
- optuna-script: the script a user writes from Optuna's PyTorch example: one process, a plain
  training loop of a straightforward port of the network, TPESampler() and MedianPruner() with
  their defaults, the same epochs per trial, the same number of trials, the same reference
  enqueued first, over the demo study's search space (the sampler seeded, for a repeatable row);
- service: `basset-hpo run --study demo` with its defaults, in a fresh folder;
- service-at-script-wall: the same with `--timeout` set so that the run (start-up, trials, the
  end-of-run test scores) ends within the optuna-script row's wall time: the service given no
  more time than the script took.

Timed rows (`--budget S`: every row gets S seconds and two trials at a time, in turn on the
same data, so that all see the same machine load):
- service-before: `basset-hpo run --timeout S --workers 2` on the demo study with the engine
  settings before issue 24 (Hyperband from epoch 3 with keep_rising 0.01, 8 start-up trials);
- service-timed: the same with the demo study as it ships;
- script-hyperband: the Optuna script above with TPESampler() and HyperbandPruner(min_resource=2),
  two threads (study.optimize n_jobs=2), stopping its trials at the end of the epoch running at S.

    python benchmarks/hpo_quality.py                    # the demo data (generated if missing)
    python benchmarks/hpo_quality.py --data other.h5    # the same study on other data
    python benchmarks/hpo_quality.py --only kmer-lr,service --n-trials 10
    python benchmarks/hpo_quality.py --budget 90 \
        --only service-before,service-timed,script-hyperband

Prints one row per approach (best validation AUROC, the selected model's test AUROC, wall and
CPU seconds, trials) and the goals as ratios and differences against the rows of this run.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import optuna
import torch
from benchclock import cpu_seconds
from sklearn.linear_model import LogisticRegression
from torch import nn

from basset import TrainOptions, load_data, make_demo, score_checkpoint, train
from basset.training.metrics import binary_metrics, nan_mean
from hpo.config import PACKAGED_STUDIES, load_study
from hpo.evaluate import load_scores
from hpo.space import reference_values, suggest

METHODS = ("kmer-lr", "reference", "optuna-script", "service", "service-at-script-wall",
           "service-before", "service-timed", "script-hyperband")
TIMED = METHODS[5:]
CONCURRENCY = 2
# The demo study's engine settings before issue 24 (for the service-before row).
BEFORE_PRUNER = ('[pruner]\ntype = "hyperband"\nmin_resource = 3\nreduction_factor = 3\n'
                 "keep_rising = 0.01\n\n")
BEFORE_STARTUP = 8
# What the service spends outside its trials (start-up, workers importing torch and loading the
# data, the end-of-run test scores) and the epoch a trial finishes after the deadline, taken off
# the script's wall time to give the timed run's --timeout.
SERVICE_MARGIN = 0.85
K = 6


@dataclass
class Row:
    method: str
    valid_auroc: float
    test_auroc: float
    wall_s: float
    cpu_s: float
    trials: int


def measured(method: str, run: Callable[[], tuple[float, float, int]]) -> Row:
    wall, cpu = time.perf_counter(), cpu_seconds()
    valid, test, trials = run()
    return Row(method, valid, test, time.perf_counter() - wall, cpu_seconds() - cpu, trials)


# --- 6-mer logistic regression ------------------------------------------------------------------

def kmer_counts(codes: np.ndarray) -> np.ndarray:
    """(N, 4**K) counts of every K-mer (windows with an N are skipped)."""
    n, length = codes.shape
    windows = length - K + 1
    index = np.zeros((n, windows), np.int64)
    valid = np.ones((n, windows), bool)
    for j in range(K):
        part = codes[:, j:j + windows].astype(np.int64)
        valid &= part < 4
        index = index * 4 + np.minimum(part, 3)
    counts = np.zeros((n, 4 ** K), np.float32)
    rows = np.broadcast_to(np.arange(n)[:, None], index.shape)
    np.add.at(counts, (rows[valid], index[valid]), 1)
    return counts


def kmer_lr(data_path: Path) -> tuple[float, float, int]:
    data = load_data(data_path)
    assert data.test is not None
    x = {name: kmer_counts(getattr(data, name).seqs) for name in ("train", "valid", "test")}
    best: tuple[float, float] | None = None
    grid = (1e-3, 1e-2, 1e-1)
    for c in grid:
        valid, test = [], []
        for t in range(data.num_targets):
            model = LogisticRegression(C=c, max_iter=1000).fit(x["train"], data.train.targets[:, t])
            valid.append(model.predict_proba(x["valid"])[:, 1])
            test.append(model.predict_proba(x["test"])[:, 1])
        v = nan_mean(binary_metrics(data.valid.targets, np.array(valid).T)[0])
        if best is None or v > best[0]:
            best = (v, nan_mean(binary_metrics(data.test.targets, np.array(test).T)[0]))
    assert best is not None
    return best[0], best[1], len(grid)


# --- the reference, trained to stagnation -------------------------------------------------------

def reference(data_path: Path, folder: Path) -> tuple[float, float, int]:
    params = load_study("demo").enqueue[0].params
    data = load_data(data_path)
    result = train(params, data, options=TrainOptions(
        max_epochs=200, stagnant_t=10, save_prefix=folder / "reference", quiet=True))
    assert result.best_path is not None
    return result.best_metric, score_checkpoint(result.best_path, data).auroc, 1


# --- the hand-written Optuna script -------------------------------------------------------------

def one_hot(h5: h5py.File, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(h5[f"{split}_in"][:].astype(np.float32)).squeeze(2)
    return x, torch.from_numpy(h5[f"{split}_out"][:].astype(np.float32))


def optuna_script(data_path: Path, n_trials: int | None, epochs: int, seed: int,
                  pruner: optuna.pruners.BasePruner | None = None,
                  budget: float | None = None) -> tuple[float, float, int]:
    """TPESampler() and `pruner` (MedianPruner() when None); with `budget`: as many trials as
    fit in it, two at a time, each stopped at the end of the epoch running when it ends."""
    deadline = None if budget is None else time.time() + budget
    with h5py.File(data_path, "r") as h5:
        train_x, train_y = one_hot(h5, "train")
        valid_x, valid_y = one_hot(h5, "valid")
        test_x, test_y = one_hot(h5, "test")
    length, targets = train_x.shape[-1], train_y.shape[1]
    best_model: dict[str, object] = {"auroc": -math.inf}

    def auroc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        with torch.no_grad():
            p = torch.cat([torch.sigmoid(model(x[i:i + 1024])) for i in range(0, len(x), 1024)])
        return nan_mean(binary_metrics(y.numpy(), p.numpy())[0])

    space = load_study("demo").space  # the study's ranges, drawn as a script draws them

    def draw(trial: optuna.Trial, key: str, layer: int | None = None) -> Any:
        name = key if layer is None else f"{key}_{layer}"
        return suggest(trial, space.get(name, space[key]), name)

    def define_model(trial: optuna.Trial) -> nn.Sequential:
        layers: list[nn.Module] = []
        channels, positions = 4, length
        n_conv = draw(trial, "num_conv")
        for i in range(n_conv):
            filters = draw(trial, "conv_filters", i)
            width = draw(trial, "conv_filter_sizes", i)
            if i == n_conv - 1:
                last = draw(trial, "last_pool_width")
                pool = positions if last == "global" else int(last)
            else:
                pool = draw(trial, "pool_width", i)
            layers += [nn.Conv1d(channels, filters, width, padding="same"),
                       nn.BatchNorm1d(filters), nn.ReLU(), nn.MaxPool1d(pool, ceil_mode=True),
                       nn.Dropout(draw(trial, "conv_dropouts", i))]
            channels, positions = filters, math.ceil(positions / pool)
        layers.append(nn.Flatten())
        units = channels * positions
        for j in range(draw(trial, "num_hidden")):
            hidden = draw(trial, "hidden_units", j)
            layers += [nn.Linear(units, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                       nn.Dropout(draw(trial, "hidden_dropouts", j))]
            units = hidden
        layers.append(nn.Linear(units, targets))
        return nn.Sequential(*layers)

    def objective(trial: optuna.Trial) -> float:
        torch.manual_seed(trial.number)
        model = define_model(trial)
        lr = draw(trial, "learning_rate")
        name = draw(trial, "optimization")
        batch = draw(trial, "batch_size")
        optimizer = (torch.optim.Adam if name == "adam" else torch.optim.RMSprop)(
            model.parameters(), lr=lr)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(train_x, train_y), batch_size=batch, shuffle=True)
        best = -math.inf
        for epoch in range(epochs):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                nn.functional.binary_cross_entropy_with_logits(model(x), y).backward()
                optimizer.step()
            value = auroc(model, valid_x, valid_y)
            if value > best:
                best = value
                if value > best_model["auroc"]:  # type: ignore[operator]
                    best_model.update(auroc=value, test=auroc(model, test_x, test_y))
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
            if deadline is not None and time.time() >= deadline:
                break
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=pruner or optuna.pruners.MedianPruner())
    config = load_study("demo")  # its reference first, as the service enqueues it
    study.enqueue_trial(reference_values(config, config.enqueue[0]))
    if budget is None:
        study.optimize(objective, n_trials=n_trials)
    else:
        torch.set_num_threads(1)  # two trials at a time on two cores, as the service's workers
        study.optimize(objective, timeout=budget, n_jobs=CONCURRENCY)
    return (float(best_model["auroc"]), float(best_model["test"]),  # type: ignore[arg-type]
            len(study.trials))


# --- the service --------------------------------------------------------------------------------

def before_study(folder: Path) -> Path:
    """The demo study with the engine settings before issue 24 (BEFORE_PRUNER, BEFORE_STARTUP)."""
    text = (PACKAGED_STUDIES / "demo.toml").read_text()
    text = re.sub(r"(?ms)^\[pruner\].*?(?=^\[heartbeat\])", BEFORE_PRUNER, text)
    text = re.sub(r"(?m)^n_startup_trials = .*$", f"n_startup_trials = {BEFORE_STARTUP}", text)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo.toml"
    path.write_text(text)
    return path


def service(data_path: Path, folder: Path, n_trials: int, timeout: float | None = None,
            study_file: str = "demo",
            workers: list[str] | None = None) -> tuple[float, float, int]:
    folder.mkdir(exist_ok=True)
    script = Path(sys.executable).parent / "basset-hpo"
    limit = [] if timeout is None else ["--timeout", f"{timeout:.0f}"]
    subprocess.run([str(script), "run", "--study", study_file, "--data", str(data_path.resolve()),
                    "--n-trials", str(n_trials), "-q", *limit, *(workers or [])], cwd=folder,
                   check=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder}/studies/demo.db")
    study = optuna.load_study(study_name="demo", storage=storage)
    scores = load_scores(storage, "demo").get(study.best_trial.number)
    assert scores is not None, "the run stores the best trial's test scores"
    return float(study.best_value), scores.auroc, len(study.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="Basset HDF5 (default: the demo data)")
    parser.add_argument("--n-trials", type=int, help="trials of the script and the service "
                        "(default: the demo study's)")
    parser.add_argument("--seed", type=int, default=0, help="the script's TPE seed (default 0)")
    parser.add_argument("--budget", type=float, default=90.0,
                        help="seconds for each timed row (default 90)")
    parser.add_argument("--only", default=",".join(METHODS[:5]),
                        help=f"comma-separated subset of {', '.join(METHODS)}")
    args = parser.parse_args()
    config = load_study("demo")
    wanted = args.only.split(",")
    unknown = sorted(set(wanted) - set(METHODS))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)} (known: {', '.join(METHODS)})")
    if "service-at-script-wall" in wanted and "optuna-script" not in wanted:
        parser.error("service-at-script-wall needs the optuna-script row (its wall time)")
    n_trials = args.n_trials or config.n_trials
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data_path = args.data
        if data_path is None:
            data_path = folder / "demo_data.h5"
            make_demo(data_path)
        print(f"data {args.data or 'demo (basset-demo-data)'}, {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        rows: list[Row] = []
        workers = ["--workers", str(CONCURRENCY)]
        runs: dict[str, Callable[[], tuple[float, float, int]]] = {
            "kmer-lr": lambda: kmer_lr(data_path),
            "reference": lambda: reference(data_path, folder),
            "optuna-script": lambda: optuna_script(data_path, n_trials, config.max_epochs,
                                                   args.seed),
            "service": lambda: service(data_path, folder / "service", n_trials),
            "service-at-script-wall": lambda: service(
                data_path, folder / "timed", n_trials,
                SERVICE_MARGIN * next(r.wall_s for r in rows if r.method == "optuna-script")),
            "service-before": lambda: service(
                data_path, folder / "before", 1000, args.budget,
                str(before_study(folder / "before" / "studies")), workers),
            "service-timed": lambda: service(data_path, folder / "after", 1000, args.budget,
                                             workers=workers),
            "script-hyperband": lambda: optuna_script(
                data_path, None, config.max_epochs, args.seed,
                optuna.pruners.HyperbandPruner(min_resource=2, max_resource=config.max_epochs),
                args.budget),
        }
        # The timed rows in the order given (alternate it between runs), after the others.
        order = [m for m in METHODS if m in wanted and m not in TIMED]
        for method in order + [m for m in wanted if m in TIMED]:
            if method in runs:
                rows.append(measured(method, runs[method]))
                r = rows[-1]
                print(f"{r.method:22s} valid {r.valid_auroc:.4f}  test {r.test_auroc:.4f}  "
                      f"wall {r.wall_s:7.1f} s  cpu {r.cpu_s:7.1f} s  trials {r.trials}"
                      f"  (load {os.getloadavg()[0]:.1f})", flush=True)
    by = {r.method: r for r in rows}
    if "script-hyperband" in by:
        o = by["script-hyperband"]
        for name in ("service-before", "service-timed"):
            if name in by:
                s = by[name]
                print(f"{name} - script-hyperband: valid {s.valid_auroc - o.valid_auroc:+.4f}, "
                      f"test {s.test_auroc - o.test_auroc:+.4f} (goal >= 0)")
    if "service" in by:
        s = by["service"]
        print(f"service best valid AUROC {s.valid_auroc:.4f} (goal >= 0.90)")
        if "kmer-lr" in by:
            print(f"service test - 6-mer LR test: {s.test_auroc - by['kmer-lr'].test_auroc:+.4f}"
                  " (goal >= 0)")
        if "reference" in by:
            print(f"service best valid - reference valid: "
                  f"{s.valid_auroc - by['reference'].valid_auroc:+.4f} (goal >= 0.15); test "
                  f"{s.test_auroc - by['reference'].test_auroc:+.4f}")
    if "optuna-script" in by:
        o = by["optuna-script"]
        # The wall-time goal is the timed row's: the defaults run their own budget (n_trials,
        # no time limit), however long the script's sampler happened to take.
        for name, wall_goal in (("service", " (defaults: no time limit)"),
                                ("service-at-script-wall", " (goal <= 1)")):
            if name in by:
                s = by[name]
                print(f"{name} test - script test: {s.test_auroc - o.test_auroc:+.4f} (goal >= 0);"
                      f" wall {name} / script: {s.wall_s / o.wall_s:.2f}{wall_goal}")


if __name__ == "__main__":
    main()
