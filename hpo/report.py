"""`basset-hpo report`: one self-contained HTML page about a study (plotly, works offline).

Sections (ids are stable: tests and bookmarks find them): history, learning-curves,
importances, parallel-coordinate, timeline, target-auroc, test-scores, top-trials,
confirmation. Each figure's div is `fig-<section id>`. A study that is still running is fine:
RUNNING trials are drawn up to their last epoch, and a section without enough data says why
instead of drawing nothing.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import optuna
import plotly.graph_objects as go
import sqlalchemy as sa
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from plotly.offline import get_plotlyjs

from basset import Scores, check_output_file, write_text_atomic
from hpo import confirm, evaluate, interval, progress, service_tables
from hpo.errors import ResultsError
from hpo.export import trial_params
from hpo.storage import make_engine, mask

STATE_COLORS = {
    "COMPLETE": "#2ca02c",
    "PRUNED": "#ff7f0e",
    "FAIL": "#d62728",
    "RUNNING": "#1f77b4",
    "WAITING": "#7f7f7f",
}
TOP_N = 10
PAGE_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
section { margin-bottom: 2.5em; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
.note { color: #666; font-style: italic; }
"""


@dataclass
class Section:
    id: str
    title: str
    figure: go.Figure | None = None
    body: str = ""  # HTML after the figure (a table, a note)


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def read_study_epochs(url: str, study_name: str) -> list[dict[str, Any]]:
    """The study's rows of the epoch table (none when the database has no such table)."""
    engine = make_engine(url)
    try:
        if not sa.inspect(engine).has_table(service_tables.epochs.name):
            return []
        return service_tables.read_epochs(engine, study_name)
    finally:
        engine.dispose()


def _complete(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]


def history_section(study: optuna.Study, trials: list[FrozenTrial]) -> Section:
    section = Section("history", "Optimization history")
    if not _complete(trials):
        section.body = note("no completed trial yet")
        return section
    section.figure = optuna.visualization.plot_optimization_history(study)
    section.figure.update_layout(title=None, yaxis_title="mean valid AUROC (best epoch)")
    return section


def evaluation_interval(study: optuna.Study) -> int | None:
    """Training sequences per evaluation when the study evaluates every N sequences (its
    recorded `eval_every`), None when it evaluates per epoch (or predates the record)."""
    every = study.user_attrs.get(interval.ATTR)
    return every if isinstance(every, int) else None


def learning_curves_section(trials: list[FrozenTrial], epochs: list[dict[str, Any]],
                            every: int | None = None) -> Section:
    """Valid AUROC per evaluation of every trial (epoch table, else the reported values),
    against the epoch, or with `every` (sequences per evaluation) the training sequences seen:
    the rows' own count, else evaluation x `every` for a trial without rows."""
    unit = "epoch" if every is None else "evaluation"
    section = Section("learning-curves", f"Learning curves (valid AUROC per {unit})")
    curves: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for row in epochs:
        if row["valid_auroc"] is not None and math.isfinite(row["valid_auroc"]):
            x = row["epoch"] if every is None else row["sequences"] or row["epoch"] * every
            curves[row["trial_number"]].append((x, row["valid_auroc"]))
    scale = 1 if every is None else every
    figure = go.Figure()
    shown: set[str] = set()
    for trial in trials:
        points = curves.get(trial.number) or [
            (step * scale, value) for step, value in sorted(trial.intermediate_values.items())]
        if not points:
            continue
        state = trial.state.name
        figure.add_trace(go.Scatter(
            x=[e for e, _ in points], y=[v for _, v in points], mode="lines+markers",
            name=state.lower(), legendgroup=state, showlegend=state not in shown,
            line={"color": STATE_COLORS[state], "width": 1.5}, marker={"size": 4},
            meta=trial.number,
            hovertemplate=f"trial {trial.number}<br>{'epoch' if every is None else 'sequences'}"
                          f" %{{x:,}}<br>AUROC %{{y:.4f}}<extra>{state.lower()}</extra>",
        ))
        shown.add(state)
    if not figure.data:
        section.body = note(f"no trial has finished an {unit} yet")
        return section
    figure.update_layout(xaxis_title="epoch" if every is None else "training sequences",
                         yaxis_title="mean valid AUROC", legend_title_text="final state")
    section.figure = figure
    return section


def importances_section(study: optuna.Study, trials: list[FrozenTrial]) -> Section:
    """PED-ANOVA importances (Optuna 5's default evaluator: nothing extra to install)."""
    section = Section("importances", "Hyperparameter importances")
    n_complete = len(_complete(trials))
    if n_complete < 2:
        section.body = note(f"needs at least 2 completed trials, the study has {n_complete}")
        return section
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            importances = optuna.importance.get_param_importances(study)
        except ValueError as err:
            section.body = note(f"importances cannot be computed yet: {err}")
            return section
    if not importances:
        section.body = note("the completed trials searched no parameter")
        return section
    ranked = sorted(importances.items(), key=lambda item: item[1])
    section.figure = go.Figure(go.Bar(
        x=[v for _, v in ranked], y=[k for k, _ in ranked], orientation="h",
        marker_color="#1f77b4", hovertemplate="%{y}: %{x:.3f}<extra></extra>",
    ))
    section.figure.update_layout(xaxis_title="importance (PED-ANOVA, sums to 1)",
                                 height=max(300, 28 * len(ranked) + 120))
    if caught:
        section.body = note(f"{n_complete} completed trials: {caught[0].message}")
    return section


def parallel_section(study: optuna.Study, trials: list[FrozenTrial]) -> Section:
    section = Section("parallel-coordinate", "Parallel coordinates (completed trials)")
    if not _complete(trials):
        section.body = note("no completed trial yet")
        return section
    section.figure = optuna.visualization.plot_parallel_coordinate(study)
    section.figure.update_layout(title=None)
    return section


def worker_label(trial: FrozenTrial) -> str:
    worker = trial.user_attrs.get("worker", "?")
    device = trial.user_attrs.get("device")
    return f"{worker} ({device})" if device else str(worker)


def timeline_section(trials: list[FrozenTrial], now: dt.datetime | None = None) -> Section:
    """One row per worker, one bar per trial from its start to its end (now while running)."""
    section = Section("timeline", "Timeline of trials per worker")
    now = now or dt.datetime.now()
    bars: dict[str, list[tuple[str, dt.datetime, float, int]]] = defaultdict(list)
    for trial in trials:
        if trial.datetime_start is None:
            continue
        end = trial.datetime_complete or now
        ms = max((end - trial.datetime_start).total_seconds() * 1000, 1.0)
        bars[trial.state.name].append((worker_label(trial), trial.datetime_start, ms, trial.number))
    if not bars:
        section.body = note("no trial has started yet")
        return section
    figure = go.Figure()
    for state, items in bars.items():
        figure.add_trace(go.Bar(
            y=[w for w, *_ in items], base=[s.isoformat() for _, s, _, _ in items],
            x=[ms for *_, ms, _ in items], orientation="h", name=state.lower(),
            marker_color=STATE_COLORS[state], customdata=[n for *_, n in items],
            hovertemplate="trial %{customdata}<br>%{base} + %{x:,.0f} ms<extra>%{y}</extra>",
        ))
    rows = len({w for items in bars.values() for w, *_ in items})
    figure.update_layout(
        xaxis={"type": "date", "title": "time"},
        yaxis={"title": "worker (device)", "type": "category"},
        barmode="overlay", height=max(300, 40 * rows + 160), legend_title_text="state",
    )
    section.figure = figure
    return section


def target_auroc_section(best: FrozenTrial | None, labels: list[str] | None) -> Section:
    section = Section("target-auroc", "Best trial: validation AUROC per target")
    values = best.user_attrs.get("best_target_auroc") if best is not None else None
    if best is None or not values:
        section.body = note("no completed trial with per-target AUROC yet")
        return section
    labels = labels if labels and len(labels) == len(values) else [f"target {i}" for i in
                                                                   range(len(values))]
    section.title = f"Best trial ({best.number}): validation AUROC per target"
    section.figure = go.Figure(go.Bar(
        x=labels, y=values, marker_color="#2ca02c", hovertemplate="%{x}: %{y:.4f}<extra></extra>",
    ))
    section.figure.update_layout(yaxis={"title": "valid AUROC at the best epoch", "range": [0, 1]},
                                 xaxis_title="target")
    missing = [label for label, v in zip(labels, values, strict=True) if v is None]
    if missing:
        section.body = note(f"one class only in validation, no AUROC: {', '.join(missing)}")
    return section


def test_scores_section(best: FrozenTrial | None, references: list[FrozenTrial],
                        labels: list[str] | None, tests: dict[int, Scores]) -> Section:
    """The best trial beside the reference trials on the test split, per target (`tests`: the
    stored test scores; hpo.evaluate scores them at the end of a run and on `basset-hpo
    evaluate`)."""
    section = Section("test-scores", "Test scores: best trial vs reference, per target")
    chosen = [("best", best)] if best is not None else []
    chosen += [(f"reference {r.user_attrs['reference']}", r) for r in references
               if best is None or r.number != best.number]
    scored = [(role, trial, tests[trial.number]) for role, trial in chosen
              if trial.number in tests]
    if not scored:
        section.body = note("no trial has test scores yet (basset-hpo evaluate computes them)")
        return section
    count = len(scored[0][2].target_auroc)
    names = labels if labels and len(labels) == count else [f"target {i}" for i in range(count)]
    figure = go.Figure()
    for role, trial, scores in scored:
        figure.add_trace(go.Bar(x=names, y=scores.target_auroc,
                                name=f"{role} (trial {trial.number})",
                                hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    figure.update_layout(barmode="group", yaxis={"title": "test AUROC", "range": [0, 1]},
                         xaxis_title="target")
    section.figure = figure
    head = ["target", *(f"{role} (trial {t.number}) {metric}" for role, t, _ in scored
                        for metric in ("AUROC", "AUPRC"))]
    rows = [["mean", *(f"{v:.4f}" for _, _, sc in scored for v in (sc.auroc, sc.auprc))]]
    rows.append(["valid AUROC (selection)",
                 *(f"{evaluate.valid_value(t):.4f}" if m == "AUROC" else ""
                   for _, t, _ in scored for m in ("AUROC", "AUPRC"))])
    for i, name in enumerate(names):
        rows.append([name, *(f"{v:.4f}" if math.isfinite(v) else "-"
                             for _, _, sc in scored
                             for v in (sc.target_auroc[i], sc.target_auprc[i]))])
    section.body = (
        '<table id="test-scores-table"><thead><tr>'
        + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                  for row in rows)
        + "</tbody></table>"
    )
    return section


def _architecture(trial: FrozenTrial, study_name: str) -> list[str]:
    """conv layers as filters x width / pool ("soft": the last pools softly), hidden units,
    learning rate, batch size."""
    try:
        p = trial_params(trial, study_name)
    except ResultsError:
        return ["-"] * 4
    conv = " ".join(f"{f}×{w}/{pool}" for f, w, pool in
                    zip(p.conv_filters, p.conv_filter_sizes, p.pool_width, strict=True))
    if p.last_pool == "soft":
        conv += " soft"
    hidden = " ".join(str(h) for h in p.hidden_units) or "none"
    return [conv, hidden, f"{p.learning_rate:.3g}", str(p.batch_size)]


def top_trials_section(trials: list[FrozenTrial], study_name: str) -> Section:
    section = Section("top-trials", f"Top {TOP_N} trials")
    top = sorted(_complete(trials), key=lambda t: cast(float, t.value), reverse=True)[:TOP_N]
    if not top:
        section.body = note("no completed trial yet")
        return section
    head = ["rank", "trial", "valid AUROC", "best epoch", "conv (filters×width/pool)",
            "hidden", "learning rate", "batch", "worker (device)"]
    rows = []
    for rank, trial in enumerate(top, start=1):
        cells = [str(rank), str(trial.number), f"{trial.value:.4f}",
                 str(trial.user_attrs.get("best_epoch", "-")), *_architecture(trial, study_name),
                 worker_label(trial)]
        rows.append(f'<tr data-trial="{trial.number}">'
                    + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    section.body = (
        '<table id="top-trials-table"><thead><tr>'
        + "".join(f"<th>{html.escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )
    return section


def confirmation_section(summaries: list[confirm.ConfigSummary], study_name: str) -> Section:
    """Per confirmed configuration: a dot per seed's validation AUROC beside the original's."""
    section = Section("confirmation", "Confirmation: the top trials retrained with new seeds")
    if not any(s.valid for s in summaries):
        section.body = note(f"no completed confirmation yet (basset-hpo confirm --study "
                            f"{study_name} --top K --seeds S)")
        return section
    labels = [f"#{s.rank} trial {s.source_trial}" for s in summaries]
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=[label for label, s in zip(labels, summaries, strict=True) for _ in s.valid],
        y=[v for s in summaries for v in s.valid], mode="markers", name="new seed",
        marker={"size": 9, "color": STATE_COLORS["COMPLETE"], "opacity": 0.7},
        customdata=[n for s in summaries for n in s.seed_trials],
        hovertemplate="%{x}<br>AUROC %{y:.4f}<br>trial %{customdata} of "
                      f"{html.escape(confirm.confirm_name(study_name))}<extra>new seed</extra>",
    ))
    figure.add_trace(go.Scatter(
        x=labels, y=[s.original_valid for s in summaries], mode="markers", name="original",
        marker={"size": 13, "symbol": "diamond-open", "color": "#222", "line": {"width": 2}},
        hovertemplate="%{x}<br>original AUROC %{y:.4f}<extra>original</extra>",
    ))
    figure.update_layout(xaxis_title="configuration (rank in the study, source trial)",
                         yaxis_title="mean valid AUROC (best epoch)")
    section.figure = figure
    section.body = (f"<p>{html.escape(confirm.verdict(summaries))}</p>"
                    f"<pre>{html.escape(confirm.table(summaries))}</pre>")
    return section


def _render(section: Section) -> str:
    parts = [f'<section id="{section.id}">', f"<h2>{html.escape(section.title)}</h2>"]
    if section.figure is not None:
        section.figure.update_layout(template="plotly_white", margin={"t": 30})
        parts.append(section.figure.to_html(
            full_html=False, include_plotlyjs=False, div_id=f"fig-{section.id}",
            default_height=section.figure.layout.height or 450,
            config={"displaylogo": False, "responsive": True},
        ))
    parts.append(section.body)
    parts.append("</section>")
    return "\n".join(parts)


def build_report(storage: RDBStorage, study_name: str, *,
                 epochs: list[dict[str, Any]], source: str) -> str:
    """The whole page: plotly.js inlined once in the head, every figure drawn with it."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    snap = progress.snapshot(storage, study_name)
    sections = [
        history_section(study, trials),
        learning_curves_section(trials, epochs, evaluation_interval(study)),
        importances_section(study, trials),
        parallel_section(study, trials),
        timeline_section(trials),
        target_auroc_section(snap.best, study.user_attrs.get("target_labels")),
        test_scores_section(snap.best, snap.references, study.user_attrs.get("target_labels"),
                            evaluate.load_scores(storage, study_name, trials=trials)),
        top_trials_section(trials, study_name),
        confirmation_section(confirm.load_summaries(storage, study_name), study_name),
    ]
    stamp = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = html.escape(f"basset-hpo study {study_name}")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{PAGE_STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<h1>{title}</h1>",
        f'<p id="summary">{html.escape(progress.headline(snap))}</p>',
        note(f"storage {source}; generated {stamp}"),
        *(_render(s) for s in sections),
        "</body></html>",
    ])


def write_report(storage: RDBStorage, url: str, study_name: str,
                 out: Path) -> None:
    check_output_file(out)
    page = build_report(storage, study_name, epochs=read_study_epochs(url, study_name),
                        source=mask(url))
    write_text_atomic(out, page)
