"""Rows, means and spreads, and the curves of an engine run, from its Record."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from basset import BassetError, load_data, score_checkpoint
from peers.common import CONCURRENCY, Record, TrialRecord


@dataclass
class Row:
    data: str
    engine: str
    seed: int
    best_valid: float
    test_auroc: float
    started: int
    finished: int
    pruned: int
    busy: float  # share of CONCURRENCY x wall spent in epochs
    overhead_s: float  # per trial started: worker time not spent in epochs
    wall_s: float
    curve: list[tuple[float, float]]  # best-so-far (seconds from start, valid AUROC)
    # The highest test AUROC of any trial of the run, what a perfect selection would have taken:
    # below the best other engine's test_auroc, the search never trained as good a model; above
    # it, validation chose the wrong one. nan in rows saved before it was measured.
    best_test: float = math.nan


def curve(record: Record) -> list[tuple[float, float]]:
    points, best = [], -math.inf
    for e in sorted(record.epochs, key=lambda e: e.t):
        if e.valid > best:
            best = e.valid
            points.append((round(e.t, 2), e.valid))
    return points


def score_trials_on_test(data_path: Path, trials: list[TrialRecord]) -> dict[str, float]:
    """Each trial's best checkpoint scored on the test split (trials without one left out)."""
    saved = [t for t in trials if t.best_path and Path(t.best_path).is_file()]
    if not saved:
        return {}
    test = load_data(data_path, splits=("test",))
    scores = {}
    for trial in saved:
        try:
            scores[trial.trial] = score_checkpoint(str(trial.best_path), test, split="test",
                                                   rc=trial.rc).auroc
        except BassetError:
            continue
    return scores


def make_row(data_name: str, data_path: Path, engine: str, seed: int, record: Record,
             wall: float) -> Row:
    finite = [t for t in record.trials if math.isfinite(t.best)]
    best = max(finite, key=lambda t: t.best, default=None)  # the selected trial: by validation
    scores = score_trials_on_test(data_path, finite)
    test = scores.get(best.trial, math.nan) if best is not None else math.nan
    training = sum(e.seconds for e in record.epochs)
    started = len(record.trials)
    return Row(
        data=data_name, engine=engine, seed=seed,
        best_valid=best.best if best else math.nan, test_auroc=test, started=started,
        finished=sum(t.state != "pruned" for t in record.trials),
        pruned=sum(t.state == "pruned" for t in record.trials),
        busy=training / (CONCURRENCY * wall),
        overhead_s=(CONCURRENCY * wall - training) / max(started, 1),
        wall_s=wall, curve=curve(record),
        best_test=max((v for v in scores.values() if math.isfinite(v)), default=math.nan),
    )


def time_to(row: Row, target: float) -> float:
    """Seconds until the best-so-far reached `target` (inf: never)."""
    return next((t for t, v in row.curve if v >= target), math.inf)


def _mean_sd(values: list[float]) -> tuple[float, float, float]:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan, math.nan
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd, sd / math.sqrt(len(values))


def by_data(rows: list[Row]) -> dict[str, list[Row]]:
    """The rows of each data set, in the order the sets first appear."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.data, []).append(row)
    return groups


def best_other_valid(rows: list[Row], engine: str) -> float:
    """The best mean final validation AUROC of the engines other than `engine` in `rows`."""
    others = {r.engine for r in rows} - {engine}
    means = [_mean_sd([r.best_valid for r in rows if r.engine == e])[0] for e in others]
    return max((m for m in means if math.isfinite(m)), default=math.nan)


def reach_fraction(runs: list[Row], target: float, budget: float) -> tuple[float, int]:
    """(mean time to reach `target` as a fraction of the budget, seeds that reached it); a seed
    that never got there counts as the whole budget (a lower bound on its time)."""
    times = [time_to(r, target) for r in runs]
    return (statistics.fmean(min(t, budget) for t in times) / budget,
            sum(t <= budget for t in times))


def verdicts(rows: list[Row], budget: float, engine: str = "service") -> list[str]:
    """Issue 24's acceptance per data set for `engine`: its mean selected test AUROC "ahead"
    (at least every other engine's mean), "level" (below the best other's mean by at most that
    engine's standard error over seeds) or "behind"; and its mean time to the best other
    engine's final validation AUROC, against the goal of 0.7 x the budget. Nothing for rows
    without `engine` or without another engine to compare with."""
    lines, level, fast, sets = [], 0, 0, 0
    for data, mine in by_data(rows).items():
        tests = {e: _mean_sd([r.test_auroc for r in mine if r.engine == e])
                 for e in dict.fromkeys(r.engine for r in mine)}
        if engine not in tests or len(tests) < 2:
            continue
        sets += 1
        mean = tests.pop(engine)[0]
        rival = max(tests, key=lambda e: tests[e][0])
        rival_mean, _, rival_se = tests[rival]
        runs = [r for r in mine if r.engine == engine]
        word = ("ahead" if mean >= rival_mean else
                "level" if mean >= rival_mean - rival_se else "behind")
        fraction, reached = reach_fraction(runs, best_other_valid(mine, engine), budget)
        level += word != "behind"
        fast += fraction <= 0.7
        lines.append(f"{data}: {engine} {mean:.4f} against {rival} {rival_mean:.4f} (se "
                     f"{rival_se:.4f}): {word}; the best other's valid reached at "
                     f"{fraction:.2f}x the budget ({reached}/{len(runs)} seeds)")
    if sets:
        lines.append(f"{engine}: ahead or level on {level} of {sets} sets; at most 0.7x the "
                     f"budget on {fast} of {sets}")
    return lines


def table(rows: list[Row], budget: float) -> str:
    """Per data set and engine: means +- sd (and standard errors) over seeds; the mean time each
    engine needs to reach the best other engine's mean final validation AUROC (the budget for a
    seed that never reached it), and in how many seeds it did; the mean of each run's best test
    AUROC of any trial ("-" for rows saved before it was measured)."""
    lines = [
        "| data | engine | seeds with a trial | best valid | test AUROC (se) | any trial's best "
        "test | started / pruned | busy | overhead/trial | reaches best other's valid at |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for data, mine in by_data(rows).items():
        for engine in dict.fromkeys(r.engine for r in mine):
            runs = [r for r in mine if r.engine == engine]
            fraction, reached = reach_fraction(runs, best_other_valid(mine, engine), budget)
            shown = (f"{fraction:.2f}x budget ({reached}/{len(runs)})"
                     if reached else f"never (0/{len(runs)})")
            valid, valid_sd, _ = _mean_sd([r.best_valid for r in runs])
            test, test_sd, test_se = _mean_sd([r.test_auroc for r in runs])
            oracle = _mean_sd([r.best_test for r in runs])[0]
            lines.append(
                f"| {data} | {engine} | {sum(math.isfinite(r.best_valid) for r in runs)}/"
                f"{len(runs)} | {valid:.4f} ± {valid_sd:.4f} | "
                f"{test:.4f} ± {test_sd:.4f} ({test_se:.4f}) | "
                f"{'-' if math.isnan(oracle) else f'{oracle:.4f}'} | "
                f"{statistics.fmean(r.started for r in runs):.1f} / "
                f"{statistics.fmean(r.pruned for r in runs):.1f} | "
                f"{statistics.fmean(r.busy for r in runs):.0%} | "
                f"{statistics.fmean(r.overhead_s for r in runs):.1f} s | {shown} |")
    return "\n".join(lines)


def row_line(row: Row) -> str:
    return (f"{row.data:10s} {row.engine:14s} seed {row.seed}  valid {row.best_valid:.4f}  "
            f"test {row.test_auroc:.4f} (any trial's best {row.best_test:.4f})  "
            f"trials {row.started} (pruned {row.pruned})  "
            f"busy {row.busy:.0%}  overhead {row.overhead_s:.1f} s/trial  wall {row.wall_s:.0f} s")


def write_curves(rows: list[Row], out: Path, budget: float) -> list[Path]:
    """One offline HTML page per data set: every engine's best-so-far curves, one per seed."""
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
    engines = list(dict.fromkeys(r.engine for r in rows))  # one colour per engine on every page
    written = []
    for data, mine in by_data(rows).items():
        figure = go.Figure()
        for row in mine:
            if not row.curve:
                continue
            xs, ys = zip(*row.curve, strict=True)
            colour = colours[engines.index(row.engine) % len(colours)]
            figure.add_trace(go.Scatter(
                x=[*xs, max(budget, xs[-1])], y=[*ys, ys[-1]], mode="lines",
                line={"shape": "hv", "color": colour}, name=f"{row.engine} seed {row.seed}",
                legendgroup=row.engine))
        figure.update_layout(title=f"{data}: best validation AUROC so far ({budget:.0f} s, "
                                   f"{CONCURRENCY} trials at a time)",
                             xaxis_title="seconds", yaxis_title="best valid AUROC")
        path = out / f"curves_{data}.html"
        figure.write_html(path, include_plotlyjs=True)
        written.append(path)
    return written


def as_json(row: Row) -> dict[str, Any]:
    return asdict(row)
