"""Helpers of the results tests (export, report, dashboard): tiny studies run by the service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from hpo import service_tables
from hpo.config import load_study
from hpo.objective import TrainFn
from hpo.storage import make_engine
from hpo.study import prepare_study
from hpo.workers import RunPlan, run_trials
from hpo_testutil import metrics, scripted_train, study_toml, tiny_data, write_h5

ARCH = "conv_filter_sizes = [5], pool_width = [2], hidden_units = [16], batch_size = 32"
# Scripted curves per first-layer filter count: two improve, one stagnates, one is hopeless.
CURVES = {
    4: [0.6, 0.7, 0.8],
    5: [0.7, 0.9, 0.88],
    6: [0.5, 0.5, 0.5],
    7: [0.75, 0.92, 0.93],
}
MEDIAN = 'type = "median"\nn_startup_trials = 1\nn_warmup_steps = 0\nn_min_trials = 1'


def run_tiny_study(folder: Path, *, n_trials: int, top: str = "", train_fn: TrainFn | None = None,
                   ranks: tuple[int, ...] = (0,), **parts: str) -> str:
    """Write the tiny data and study file, then run `n_trials` trials through the service's
    worker loop in this process, one rank after the other. Returns the storage URL."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest on shared cores (synth_data)
    try:
        return _run(folder, n_trials, top, train_fn, ranks, **parts)
    finally:
        torch.set_num_threads(threads)


def _run(folder: Path, n_trials: int, top: str, train_fn: TrainFn | None,
         ranks: tuple[int, ...], **parts: str) -> str:
    write_h5(folder / "tiny.h5", tiny_data())
    config = load_study(str(study_toml(folder, top, **parts)))
    url = f"sqlite:///{folder}/studies/tiny.db"
    prepare_study(config, url)
    for i, rank in enumerate(ranks, start=1):
        plan = RunPlan(config=config, url=url, n_trials=n_trials * i // len(ranks),
                       devices=["cpu"] * len(ranks), threads=1, train_fn=train_fn)
        run_trials(plan, rank)
    return url


def scripted_study(folder: Path) -> str:
    """Four scripted trials (3 complete, 1 pruned) on two workers, then a failed trial and a
    running one added as a crashed worker and a busy one would leave them."""
    enqueue = ", ".join(f"{{conv_filters = [{f}], {ARCH}, learning_rate = 0.01}}" for f in CURVES)
    url = run_tiny_study(folder, n_trials=4, top=f"enqueue = [{enqueue}]",
                         train_fn=scripted_train(CURVES), ranks=(0, 1), pruner=MEDIAN)
    study = optuna.load_study(study_name="tiny", storage=url)
    engine = make_engine(url)
    failed = study.ask()
    failed.set_user_attr("worker", "other/0")
    failed.set_user_attr("device", "cuda:0")
    service_tables.write_epoch(engine, "tiny", failed.number, metrics(1, 0.55))
    failed.report(0.55, 1)
    study.tell(failed, state=TrialState.FAIL)
    running = study.ask()
    running.set_user_attr("worker", "other/0")
    running.set_user_attr("device", "cuda:0")
    running.report(0.6, 1)  # no epoch row: the report falls back to the reported values
    engine.dispose()
    return url


def figure_data(page: str, div_id: str) -> list[dict]:  # type: ignore[type-arg]
    """The traces of the plotly figure drawn into `div_id` in an HTML page."""
    call = re.search(rf'Plotly\.newPlot\(\s*"{re.escape(div_id)}",\s*', page)
    assert call is not None, f"no figure {div_id}"
    data, _ = json.JSONDecoder().raw_decode(page, call.end())
    return data
