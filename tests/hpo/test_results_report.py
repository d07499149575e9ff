"""basset-hpo report: every figure is in the page with the study's numbers; one copy of plotly.js;
a study that has just started still renders; headless Chromium draws it."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from plotly.offline import get_plotlyjs

from hpo.cli import main
from hpo.report import STATE_COLORS, evaluation_interval, learning_curves_section
from results_testutil import figure_data, scripted_study

SECTIONS = ("history", "learning-curves", "importances", "parallel-coordinate", "timeline",
            "target-auroc", "top-trials")


@pytest.fixture
def report(tmp_path: Path) -> tuple[str, optuna.Study]:
    """The report of the scripted study: 3 complete, 1 pruned, 1 failed, 1 running trial."""
    url = scripted_study(tmp_path)
    out = tmp_path / "report.html"
    assert main(["report", "--study", str(tmp_path / "tiny.toml"), "--storage", url,
                 "-o", str(out)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file
    return out.read_text(), optuna.load_study(study_name="tiny", storage=url)


def test_every_figure_holds_the_study_data(report: tuple[str, optuna.Study]) -> None:
    page, study = report
    trials = study.trials
    states = {t.number: t.state.name for t in trials}
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE),
                      key=lambda t: t.value, reverse=True)
    assert [s.name for s in TrialState if s.name in states.values()] == [
        "RUNNING", "COMPLETE", "PRUNED", "FAIL"]
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    # Offline: plotly.js inlined exactly once, nothing fetched.
    assert page.count(get_plotlyjs()[:300]) == 1 and "<script src=" not in page
    assert "tiny: 5 done (3 complete, 1 pruned, 1 failed), 1 running, best 0.9300" in page

    history = {t["name"]: t for t in figure_data(page, "fig-history")}
    assert sorted(history["Objective Value"]["y"]) == sorted(t.value for t in complete)

    # One learning curve per trial that has an epoch, coloured by the trial's state; the
    # running trial's curve comes from its reported value (it has no epoch row).
    curves = figure_data(page, "fig-learning-curves")
    assert sorted(c["meta"] for c in curves) == [t.number for t in trials]
    for curve in curves:
        trial = trials[curve["meta"]]
        assert curve["line"]["color"] == STATE_COLORS[trial.state.name]
        assert curve["y"] == [trial.intermediate_values[e] for e in curve["x"]]
    assert {c["name"] for c in curves if c["showlegend"]} == {"complete", "pruned", "fail",
                                                              "running"}

    (importances,) = figure_data(page, "fig-importances")
    assert set(importances["y"]) == set(complete[0].params)
    assert sum(importances["x"]) == pytest.approx(1.0)

    lines = [t for t in figure_data(page, "fig-parallel-coordinate") if t["mode"] == "lines"]
    assert len(lines) == len(complete)

    # Timeline: one row per worker, one bar per started trial.
    bars = figure_data(page, "fig-timeline")
    rows = {y for bar in bars for y in bar["y"]}
    workers = {f"{t.user_attrs['worker']} ({t.user_attrs['device']})" for t in trials}
    assert rows == workers and len(rows) == 3  # two local CPU workers and other/0 (cuda:0)
    assert sorted(n for bar in bars for n in bar["customdata"]) == [t.number for t in trials]
    assert {bar["name"]: len(bar["y"]) for bar in bars} == {
        "complete": 3, "pruned": 1, "fail": 1, "running": 1}

    (targets,) = figure_data(page, "fig-target-auroc")
    assert targets["x"] == ["t0", "t1", "t2"]
    assert targets["y"] == complete[0].user_attrs["best_target_auroc"] == [0.93, None, 0.93]
    assert "no AUROC: t1" in page and f"Best trial ({complete[0].number})" in page

    table = page[page.index('<table id="top-trials-table">'):]
    table = table[: table.index("</table>")]
    assert re.findall(r'<tr data-trial="(\d+)">', table) == [str(t.number) for t in complete]
    assert "<td>0.9300</td>" in table and "<td>7×5/2</td>" in table


def test_a_study_that_has_just_started_still_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/new.db"
    study = optuna.create_study(study_name="new", storage=url, direction="maximize")
    study.ask()  # running, no epoch yet
    out = tmp_path / "r.html"
    assert main(["report", "--study", "new", "--storage", url, "-o", str(out)]) == 0
    page = out.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert len(re.findall(r"Plotly\.newPlot\(", page)) == 1  # only the timeline has data
    assert len(figure_data(page, "fig-timeline")) == 1
    assert "no completed trial yet" in page and "no trial has finished an epoch yet" in page
    assert "needs at least 2 completed trials, the study has 0" in page
    assert main(["report", "--study", "gone", "--storage", url, "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("no study 'gone' in " + url)
    assert main(["report", "--study", "new", "--storage", url, "-o",
                 str(tmp_path / "no" / "r.html")]) == 2
    assert "folder" in capsys.readouterr().err


def read_png(path: Path) -> np.ndarray:
    """RGB pixels of an 8-bit RGB/RGBA PNG (what Chromium writes), without Pillow."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
        elif kind == b"IDAT":
            idat += body
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(idat)
    pixels = np.zeros((height, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = np.frombuffer(raw, np.uint8, stride, start + 1).astype(np.int64)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum along the row, per channel
            cur = np.cumsum(line.reshape(-1, bpp), axis=0).reshape(-1) & 255
        elif kind == 2:  # Up
            cur = (line + prev) & 255
        else:  # Average, Paeth: each byte needs the one decoded just before it
            row, up, out = line.tolist(), prev.tolist(), [0] * stride
            for i in range(stride):
                a = out[i - bpp] if i >= bpp else 0
                b, c = up[i], up[i - bpp] if i >= bpp else 0
                if kind == 3:
                    pred = (a + b) >> 1
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                out[i] = (row[i] + pred) & 255
            cur = np.array(out, dtype=np.int64)
        pixels[y], prev = cur, cur
    return pixels.reshape(height, width, bpp)[:, :, :3]


@pytest.mark.browser
def test_headless_chromium_draws_the_report(
    report: tuple[str, optuna.Study], tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not on PATH (.ci/run installs Debian's chromium)")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,2000", (tmp_path / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = read_png(shot)
    assert pixels.shape == (2000, 1200, 3)
    assert (pixels[0, 0] == 255).all()  # the page's white background
    # Not blank: the plots' coloured lines and bars cover a good part of the page (the title
    # and headings alone are black on white, with no saturated pixel at all).
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 60
    assert saturated.mean() > 0.005, saturated.mean()
    assert pixels.std() > 10


def test_learning_curves_of_a_study_that_evaluates_every_n_sequences() -> None:
    # Rows carry the sequences seen; a trial without rows (reported values only) is placed at
    # evaluation x N; per epoch (no interval) the x axis stays the epoch.
    with_rows = optuna.trial.create_trial(state=TrialState.COMPLETE, value=0.7,
                                          intermediate_values={1: 0.6, 2: 0.7})
    reported = optuna.trial.create_trial(state=TrialState.PRUNED,
                                         intermediate_values={1: 0.55, 2: 0.5})
    with_rows.number, reported.number = 0, 1
    rows = [{"trial_number": 0, "epoch": 1, "valid_auroc": 0.6, "sequences": 960},
            {"trial_number": 0, "epoch": 2, "valid_auroc": 0.7, "sequences": 1920}]
    section = learning_curves_section([with_rows, reported], rows, every=1000)
    assert section.figure is not None and section.title.endswith("per evaluation)")
    assert section.figure.layout.xaxis.title.text == "training sequences"
    assert [(list(t.x), list(t.y)) for t in section.figure.data] == [
        ([960, 1920], [0.6, 0.7]), ([1000, 2000], [0.55, 0.5])]
    per_epoch = learning_curves_section([with_rows, reported], rows)
    assert per_epoch.figure is not None and per_epoch.figure.layout.xaxis.title.text == "epoch"
    assert [list(t.x) for t in per_epoch.figure.data] == [[1, 2], [1, 2]]
    empty = learning_curves_section([], [], every=1000)
    assert empty.figure is None and "no trial has finished an evaluation yet" in empty.body


def test_the_recorded_interval_sets_the_axis(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/i.db", study_name="i")
    assert evaluation_interval(study) is None
    study.set_user_attr("eval_every", "epoch")
    assert evaluation_interval(study) is None
    study.set_user_attr("eval_every", 4300)
    assert evaluation_interval(study) == 4300
