"""basset-hpo confirm: the top trials retrained with new seeds in the linked study NAME-confirm
(exact counts, other seeds, the same params, resumable), its summary, export --confirmed and the
report's section. Real 2-epoch trials on the tiny data, run by the service's worker loop in this
process (run_study's worker processes are the same loop; the run tests cover them)."""

from __future__ import annotations

import math
import shutil
import statistics
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import FrozenTrial, TrialState

from basset.cli import train as basset_cli
from basset.params import parse_params, read_params
from basset.training.checkpoint import load_model, read_checkpoint
from hpo import cli as hpo_cli
from hpo import confirm, evaluate, progress
from hpo.config import load_study
from hpo.study import prepare_study
from hpo.supervisor import WrapUp
from hpo.workers import RunPlan, run_trials
from results_testutil import figure_data, run_tiny_study

TOP = "max_epochs = 2"


def in_process(plan: RunPlan, wrap_up: WrapUp | None = None) -> progress.Snapshot:
    """run_study without worker processes: one worker loop here, then the wrap-up."""
    storage = prepare_study(plan.config, plan.url)
    run_trials(plan, 0)
    if wrap_up is not None:
        wrap_up(storage, plan.devices[0], True)
    return progress.snapshot(storage, plan.config.name)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Four real 2-epoch trials of the tiny study."""
    folder = tmp_path_factory.mktemp("confirm")
    return folder, run_tiny_study(folder, n_trials=4, top=TOP)


@pytest.fixture
def study(source: tuple[Path, str], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A private copy of the source study (each test confirms on its own), confirm in-process."""
    folder, _ = source
    shutil.copytree(folder, tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "tiny.toml").read_text().replace(str(folder), str(tmp_path))
    (tmp_path / "tiny.toml").write_text(text)
    monkeypatch.setattr(hpo_cli, "run_study", in_process)
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    return tmp_path, f"sqlite:///{tmp_path}/studies/tiny.db"


def _confirm(folder: Path, url: str, top: int, seeds: int) -> int:
    return hpo_cli.main(["confirm", "--study", str(folder / "tiny.toml"), "--storage", url,
                         "--top", str(top), "--seeds", str(seeds), "--workers", "1", "-q"])


def _trials(url: str, name: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).trials


def test_confirm_trains_exactly_top_times_seeds_with_new_seeds_and_continues(
    study: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url = study
    source = {t.number: t for t in _trials(url, "tiny")}
    top2 = evaluate.top_trials(list(source.values()), 2)
    assert _confirm(folder, url, 2, 2) == 0
    out = capsys.readouterr().out
    trials = _trials(url, "tiny-confirm")
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs["source_trial"] for t in trials) == sorted(
        [t.number for t in top2] * 2)
    seeds = [t.user_attrs["seed"] for t in trials]
    assert len(set(seeds)) == 4 and not set(seeds) & {t.user_attrs["seed"] for t in source.values()}
    for t in trials:  # the same configuration as its source trial, trained with its own seed
        original = source[t.user_attrs["source_trial"]]
        assert t.params == original.params
        assert t.user_attrs["params_table"] == original.user_attrs["params_table"]
        checkpoint = read_checkpoint(t.user_attrs["best_checkpoint"])
        assert checkpoint.params == parse_params(original.user_attrs["params_table"])

    # Printed and stored: mean +- sd of the seeds beside the original value, and the bias.
    best = top2[0]
    values = [t.value for t in trials if t.user_attrs["source_trial"] == best.number]
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    row = next(line for line in out.splitlines() if line.startswith(f"1     {best.number} "))
    assert f"{best.value:.4f}" in row and f"{mean:.4f} ± {sd:.4f}" in row
    assert f"{best.value - mean:+.4f}" in row
    summary = optuna.load_study(study_name="tiny-confirm", storage=url).user_attrs["summary"]
    first = next(s for s in summary if s["source_trial"] == best.number)
    assert first["valid_mean"] == pytest.approx(mean) and first["bias"] == pytest.approx(
        best.value - mean
    )
    assert 0 < first["test_mean"] < 1 and len(first["test"]) == 2
    assert math.isfinite(first["original_test"])
    assert "best once confirmed" in out or "stays best" in out

    # Re-running adds nothing; one more seed adds exactly one trial per configuration.
    assert _confirm(folder, url, 2, 2) == 0
    assert len(_trials(url, "tiny-confirm")) == 4
    assert _confirm(folder, url, 2, 3) == 0
    trials = _trials(url, "tiny-confirm")
    assert len(trials) == 6 and len({t.user_attrs["seed"] for t in trials}) == 6
    assert sorted(t.user_attrs["seed_index"] for t in trials) == [1, 1, 2, 2, 3, 3]


def test_an_interrupted_confirm_resumes_from_its_checkpoint(study: tuple[Path, str]) -> None:
    folder, url = study
    config = load_study(str(folder / "tiny.toml"))
    top = confirm.choose_top(_trials(url, "tiny"), "tiny", 2)
    linked, n_trials = confirm.prepare(config, url, top, 1)
    assert n_trials == 2
    calls = []

    def stop_after_first_epoch() -> bool:  # the loop asks once, then the first epoch's end
        calls.append(1)
        return len(calls) >= 2

    plan = RunPlan(config=linked, url=url, n_trials=n_trials, devices=["cpu"], threads=1)
    run_trials(plan, 0, stop_after_first_epoch)
    trials = _trials(url, "tiny-confirm")
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING, TrialState.WAITING]
    interrupted = trials[0]

    assert _confirm(folder, url, 2, 1) == 0  # the same command resumes, and adds nothing
    trials = _trials(url, "tiny-confirm")
    assert len(trials) == 3 and sum(t.state == TrialState.COMPLETE for t in trials) == 2
    resumed = next(t for t in trials if t.user_attrs.get("resumed_from"))
    assert resumed.user_attrs["seed"] == interrupted.user_attrs["seed"]
    assert resumed.user_attrs["source_trial"] == interrupted.user_attrs["source_trial"]
    assert sorted(resumed.intermediate_values) == [1, 2]


def test_export_confirmed_trains_the_same_architecture_and_report_shows_the_seeds(
    study: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, url = study
    assert _confirm(folder, url, 3, 2) == 0
    summaries = confirm.load_summaries(optuna.storages.RDBStorage(url), "tiny")
    best = max(summaries, key=lambda s: s.valid_mean)
    seeds = {t.number: t for t in _trials(url, "tiny-confirm")}
    best_seed = seeds[best.seed_trials[best.valid.index(max(best.valid))]]
    capsys.readouterr()

    out, model = tmp_path / "confirmed.txt", tmp_path / "confirmed.pt"
    assert hpo_cli.main(["export", "--study", str(folder / "tiny.toml"), "--storage", url,
                         "--confirmed", "-o", str(out), "--model", str(model)]) == 0
    assert f"trial {best.source_trial} (" in capsys.readouterr().out
    assert model.read_bytes() == Path(best_seed.user_attrs["best_checkpoint"]).read_bytes()
    exported = load_model(model)
    assert basset_cli.train_main(["-q", "-job", str(out), "-max_epochs", "1", "-save",
                                  str(tmp_path / "again"), str(folder / "tiny.h5")]) == 0
    again = load_model(tmp_path / "again_best.pt")
    assert again.params == exported.params == read_params(out)
    shapes = {k: v.shape for k, v in exported.model.state_dict().items()}
    assert {k: v.shape for k, v in again.model.state_dict().items()} == shapes

    page = tmp_path / "report.html"
    assert hpo_cli.main(["report", "--study", str(folder / "tiny.toml"), "--storage", url,
                         "-o", str(page)]) == 0
    traces = figure_data(page.read_text(), "fig-confirmation")
    dots, originals = traces
    assert len(dots["y"]) == 6 and len(originals["y"]) == 3  # a dot per seed, the original each
    assert sorted(dots["y"]) == pytest.approx(sorted(v for s in summaries for v in s.valid))
    assert originals["y"] == pytest.approx([s.original_valid for s in summaries])
