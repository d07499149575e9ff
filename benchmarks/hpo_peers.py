"""The HPO service against the field's engines at equal wall time (issue 24): the same trainer
(basset.train through basset's public API), the same space (the demo study's, read with
`basset-hpo space --json`), the reference configuration first, the same wall budget and two
trials at a time; selection on the validation split only, the selected trial's best checkpoint
scored once on the test split.

Engines (Ray Tune and SMAC3 come with `pip install -e '.[bench]'`):
- ray-asha-tpe: Ray Tune, ASHA (grace 2 epochs, reduction 3) + OptunaSearch (TPE)
- ray-asha-random: Ray Tune, ASHA + random search
- smac-hyperband: SMAC3 multi-fidelity facade, Hyperband over epochs, promoted configurations
  continuing from their checkpoints
- optuna-script: a plain Optuna script, TPE + HyperbandPruner(min_resource=2), n_jobs=2
- random: random search without pruning (Optuna's RandomSampler, n_jobs=2)
- service: `basset-hpo run --study <the demo study on this data> --timeout B --workers 2`

    python benchmarks/hpo_peers.py --out peers_out --oct4-mafk DIR [--budget 40] [--seeds 1,2,3]
        [--sets demo,motifs,oct4_mafk,long600] [--engines service,optuna-script,...]

Prints per data set a 6-mer logistic regression baseline (hpo_quality.py's: C picked on
validation), one row per engine and seed, then means and spreads per engine; writes rows.json and
one offline HTML page of best-so-far curves per data set into --out.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hpo_quality import kmer_lr
from peers.common import Record, Task, read_listing
from peers.datasets import SETS, make_set
from peers.summary import Row, as_json, make_row, row_line, table, verdicts, write_curves

ENGINES = ("service", "optuna-script", "random", "ray-asha-tpe", "ray-asha-random",
           "smac-hyperband")
# Small enough that a 25-40 s budget on two shared cores runs several trials per engine.
N_SEQS = {"demo": 2000, "motifs": 2000, "words": 2000, "long600": 1500, "oct4_mafk": 3000}


def engine_runner(name: str, study: Path) -> Callable[[Task], Record]:
    """Imported on use: an engine's library is needed only when it runs."""
    if name == "service":
        from peers import service
        return lambda task: service.run(task, study)
    if name in ("optuna-script", "random"):
        from peers import optuna_script
        return lambda task: optuna_script.run(task, tpe=name == "optuna-script")
    if name.startswith("ray-"):
        from peers import ray_engine
        return lambda task: ray_engine.run(task, tpe=name == "ray-asha-tpe")
    from peers import smac_engine
    return smac_engine.run


def run_one(data_name: str, data: Path, study: Path, listing: dict, engine: str, seed: int,
            budget: float, work: Path) -> Row:
    folder = work / data_name / engine / str(seed)
    folder.mkdir(parents=True, exist_ok=True)
    task = Task(data=data, listing=listing, budget_s=budget, seed=seed, workdir=folder)
    record = engine_runner(engine, study)(task)
    wall = time.time() - task.start
    return make_row(data_name, data, engine, seed, record, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=40.0, help="wall seconds per run")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--oct4-mafk", type=Path, help="folder with oct4_mafk.fa and _act.txt")
    parser.add_argument("--n-seqs", type=int, help="sequences per generated set")
    parser.add_argument("--no-kmer", action="store_true", help="skip the 6-mer LR baseline")
    parser.add_argument("--report", type=Path, nargs="+", metavar="ROWS_JSON",
                        help="run nothing: the table and curves of earlier runs' rows.json files")
    args = parser.parse_args()
    if args.report:
        report(args.report, args.out, args.budget)
        return
    torch.set_num_threads(1)  # each of the two concurrent trials on one core
    args.out.mkdir(parents=True, exist_ok=True)
    engines = args.engines.split(",")
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        sys.exit(f"unknown engine(s) {', '.join(unknown)} (known: {', '.join(ENGINES)})")
    rows: list[Row] = []
    baselines: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="hpo_peers_") as tmp:
        work = Path(tmp)
        for data_name in args.sets.split(","):
            data = make_set(data_name, args.out, n_seqs=args.n_seqs or N_SEQS.get(data_name, 0),
                            oct4_mafk=args.oct4_mafk)
            if not args.no_kmer:
                baselines[data_name] = _kmer_baseline(args.out, data_name, data)
            study = _study(data, work / data_name)
            listing = read_listing(study)
            for seed in (int(s) for s in args.seeds.split(",")):
                for engine in engines[seed % len(engines):] + engines[:seed % len(engines)]:
                    row = run_one(data_name, data, study, listing, engine, seed, args.budget,
                                  work)
                    rows.append(row)
                    print(row_line(row), flush=True)
                    (args.out / "rows.json").write_text(json.dumps(
                        {"rows": [as_json(r) for r in rows], "kmer_lr": baselines}, indent=1))
    print(table(rows, args.budget))
    for line in verdicts(rows, args.budget):
        print(line)
    for path in write_curves(rows, args.out, args.budget):
        print(f"curves: {path}")


def report(files: list[Path], out: Path, budget: float) -> None:
    """The table (with the 6-mer LR rows) and the curves of the rows in `files`, together."""
    rows, baselines = [], {}
    for path in files:
        saved = json.loads(path.read_text())
        rows += [Row(**{**r, "curve": [tuple(p) for p in r["curve"]]}) for r in saved["rows"]]
        baselines.update(saved["kmer_lr"])
    out.mkdir(parents=True, exist_ok=True)
    print(table(rows, budget))
    for line in verdicts(rows, budget):
        print(line)
    for name, scores in baselines.items():
        print(f"{name}: 6-mer LR valid {scores['valid']:.4f}, test {scores['test']:.4f}")
    for path in write_curves(rows, out, budget):
        print(f"curves: {path}")


def _kmer_baseline(out: Path, name: str, data: Path) -> dict[str, float]:
    """The 6-mer LR's (valid, test) AUROC, kept in out/kmer_lr.json (no timing in it)."""
    cache = out / "kmer_lr.json"
    known = json.loads(cache.read_text()) if cache.exists() else {}
    if name not in known:
        valid, test, _ = kmer_lr(data)
        known[name] = {"valid": valid, "test": test}
        cache.write_text(json.dumps(known, indent=1))
    print(f"{name:10s} 6-mer LR       valid {known[name]['valid']:.4f}  "
          f"test {known[name]['test']:.4f}", flush=True)
    return dict(known[name])


def _study(data: Path, folder: Path) -> Path:
    from peers.service import study_file

    folder.mkdir(parents=True, exist_ok=True)
    return study_file(data, folder)


if __name__ == "__main__":
    main()
