"""`basset-hpo confirm`: retrain the top-K completed configurations of a study with S new
training seeds. The best of many noisy trials is partly luck (the winner's curse): this measures
how much of each validation value survives another seed, and whether the best stays best.

The confirmations are the trials of a linked study `NAME-confirm` in the same storage, so
Optuna's own tools read them: each has its source trial's params and the user attrs
`source_trial` (its number in NAME), `seed_index` (1..S) and `seed`, the `-rand` it trains with:
the source trial's seed + seed_index x SEED_STRIDE, so the seeds differ from the original's and
from one another, and a re-run asks for the same ones. They are enqueued under the study lock
and trained by `run`'s workers (devices, packing, heartbeats, Ctrl-C and resume alike) with the
pruner off; the run's total is exactly the confirmations enqueued, so re-running continues an
interrupted confirm and a larger K or S adds only the missing ones.

Per configuration: mean +- sd over its completed seeds of the validation AUROC (the trial value)
and of the test AUROC (hpo.evaluate scores each best checkpoint on the test split, stored on the
trial), beside the original trial's, and the winner's-curse bias (original - confirmed mean
validation AUROC). Stored as the confirm study's user attr `summary`.
"""

from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from basset import BassetData, BassetError, Scores, load_split
from hpo import evaluate, progress
from hpo.config import HeartbeatConfig, PrunerConfig, SamplerConfig, StudyConfig
from hpo.errors import ConfigError, ResultsError
from hpo.storage import StudyLock, make_engine, make_storage
from hpo.study import prepare_study

log = logging.getLogger(__name__)
SUFFIX = "-confirm"
SEED_STRIDE = 100_000


def confirm_name(study_name: str) -> str:
    return study_name + SUFFIX


# Every seed of every configuration is a trial, and its -rand (source seed + k x SEED_STRIDE)
# must stay a 32-bit seed: bounds checked before anything is read or planned.
MAX_SEEDS = 10_000
MAX_TOP = 10_000


def check_counts(top: int, seeds: int) -> None:
    for flag, value, most in (("--top", top, MAX_TOP), ("--seeds", seeds, MAX_SEEDS)):
        if value <= 0:
            raise ConfigError(f"{flag} must be > 0, got {value}")
        if value > most:
            raise ConfigError(f"{flag} must be at most {most} (each is a trial to store and "
                              f"train), got {value}")


def choose_top(trials: list[FrozenTrial], study_name: str, top: int) -> list[FrozenTrial]:
    """The `top` best completed trials; a one-line error when the study has fewer."""
    chosen = evaluate.top_trials(trials, top)
    if len(chosen) < top:
        raise ResultsError(
            f"--top {top}: study {study_name!r} has only {len(chosen)} completed trial(s)"
        )
    return chosen


def training_seed(trial: FrozenTrial, config: StudyConfig) -> int:
    """The -rand a trial trained with (trials before the `seed` user attr: seed + number)."""
    return int(trial.user_attrs.get("seed", config.seed + trial.number))


@dataclass(frozen=True)
class Confirmation:
    """One seed of one configuration."""

    source_trial: int
    seed_index: int
    seed: int
    params: dict[str, Any]

    @property
    def user_attrs(self) -> dict[str, Any]:
        return {"source_trial": self.source_trial, "seed_index": self.seed_index,
                "seed": self.seed}


def plan(top: list[FrozenTrial], seeds: int, config: StudyConfig) -> list[Confirmation]:
    return [
        Confirmation(t.number, k, training_seed(t, config) + k * SEED_STRIDE, dict(t.params))
        for t in top
        for k in range(1, seeds + 1)
    ]


def confirm_config(config: StudyConfig) -> StudyConfig:
    """The linked study: the same data, space and stop rules; no pruner (every seed trains as
    its stop rules say); no references; the sampler never samples (every trial is enqueued)."""
    return replace(
        config, name=confirm_name(config.name), enqueue=[],
        sampler=SamplerConfig(type="random"), pruner=PrunerConfig(type="none"),
    )


def enqueue_missing(url: str, storage: optuna.storages.BaseStorage, study_name: str,
                    wanted: list[Confirmation]) -> int:
    """Enqueue the confirmations the (existing) confirm study lacks, under the study lock (two
    hosts starting together enqueue each once); returns the study's total for the run: the
    confirmations it holds, done, running or waiting."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    engine = make_engine(url)
    try:
        with StudyLock(url, study_name, engine):
            trials = study.get_trials(deepcopy=False)
            have = {(t.user_attrs.get("source_trial"), t.user_attrs.get("seed")) for t in trials}
            for c in wanted:
                if (c.source_trial, c.seed) not in have:
                    study.enqueue_trial(c.params, user_attrs=c.user_attrs)
            trials = study.get_trials(deepcopy=False)
    finally:
        engine.dispose()
    return progress.counted(trials) + sum(t.state == TrialState.WAITING for t in trials)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else math.nan


@dataclass
class ConfigSummary:
    """One configuration: its original trial and its completed confirmation seeds."""

    source_trial: int
    rank: int  # 1 = the source study's best
    original_valid: float
    original_test: float | None
    seed_trials: list[int] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)

    @property
    def valid_mean(self) -> float:
        return _mean(self.valid)

    @property
    def valid_sd(self) -> float:
        return _sd(self.valid)

    @property
    def test_mean(self) -> float:
        return _mean(self.test)

    @property
    def test_sd(self) -> float:
        return _sd(self.test)

    @property
    def bias(self) -> float:
        """The winner's curse: how much higher the original value is than the confirmed mean."""
        return self.original_valid - self.valid_mean

    def as_dict(self) -> dict[str, Any]:
        values = {key: getattr(self, key) for key in (
            "source_trial", "rank", "original_valid", "original_test", "seed_trials", "valid",
            "test", "valid_mean", "valid_sd", "test_mean", "test_sd", "bias")}
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v
                for k, v in values.items()}


def test_auroc(scores: dict[int, Scores], number: int) -> float | None:
    """Trial `number`'s test AUROC among the stored `scores` (hpo.evaluate.load_scores), None if
    it was never scored."""
    found = scores.get(number)
    return None if found is None or not math.isfinite(found.auroc) else found.auroc


def score_missing(storage: optuna.storages.RDBStorage, study_name: str,
                  trials: list[FrozenTrial], data: BassetData, device: str) -> None:
    """Score (test split) and store, as hpo.evaluate does, the trials' checkpoints not scored."""
    done = evaluate.load_scores(storage, study_name, trials=trials)
    todo = [t for t in trials if t.number not in done]
    evaluate.store_scores(storage, study_name, evaluate.score_trials(todo, data, on=[device]))


def summarize(source_trials: list[FrozenTrial], confirm_trials: list[FrozenTrial],
              source_tests: dict[int, Scores], confirm_tests: dict[int, Scores]
              ) -> list[ConfigSummary]:
    """Every configuration the confirm study holds seeds of, in the source study's order (the
    tests: each study's stored test scores)."""
    complete = [t for t in source_trials if t.state == TrialState.COMPLETE]
    ranked = evaluate.top_trials(complete, len(complete)) if complete else []
    rank = {t.number: i for i, t in enumerate(ranked, start=1)}
    by_number = {t.number: t for t in source_trials}
    summaries: dict[int, ConfigSummary] = {}
    for t in sorted(confirm_trials, key=lambda t: t.number):
        number = t.user_attrs.get("source_trial")
        if number not in by_number:
            continue
        if number not in summaries:
            source = by_number[number]
            summaries[number] = ConfigSummary(
                number, rank.get(number, 0), float(source.value or math.nan),
                test_auroc(source_tests, number)
            )
        if t.state == TrialState.COMPLETE and t.value is not None:
            s = summaries[number]
            s.seed_trials.append(t.number)
            s.valid.append(float(t.value))
            test = test_auroc(confirm_tests, t.number)
            if test is not None:
                s.test.append(test)
    return sorted(summaries.values(), key=lambda s: (s.rank == 0, s.rank, s.source_trial))


def best_confirmed(summaries: list[ConfigSummary]) -> ConfigSummary | None:
    """The configuration with the best confirmed mean validation AUROC."""
    done = [s for s in summaries if s.valid]
    return max(done, key=lambda s: (s.valid_mean, -s.rank), default=None)


def _show(mean: float, sd: float) -> str:
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.4f} ± {sd:.4f}" if math.isfinite(sd) else f"{mean:.4f}"


def table(summaries: list[ConfigSummary]) -> str:
    """The per-configuration table `confirm` prints."""
    rows = [("rank", "trial", "seeds", "original valid", "confirmed valid", "bias",
             "original test", "confirmed test")]
    for s in summaries:
        rows.append((
            str(s.rank), str(s.source_trial), str(len(s.valid)), f"{s.original_valid:.4f}",
            _show(s.valid_mean, s.valid_sd),
            f"{s.bias:+.4f}" if math.isfinite(s.bias) else "-",
            "-" if s.original_test is None else f"{s.original_test:.4f}",
            _show(s.test_mean, s.test_sd),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def verdict(summaries: list[ConfigSummary]) -> str:
    """Whether the original best stays best after confirmation."""
    best = best_confirmed(summaries)
    if best is None:
        return "no configuration has a completed confirmation yet"
    original = min(summaries, key=lambda s: (s.rank == 0, s.rank))
    if best.source_trial == original.source_trial:
        return (f"the original best, trial {best.source_trial}, stays best "
                f"(confirmed {best.valid_mean:.4f})")
    return (f"trial {best.source_trial} (rank {best.rank}) is best once confirmed "
            f"({best.valid_mean:.4f}, against {original.valid_mean:.4f} for the original best, "
            f"trial {original.source_trial})")


def prepare(config: StudyConfig, url: str, top: list[FrozenTrial],
            seeds: int) -> tuple[StudyConfig, int]:
    """Create the confirm study (or find it) and enqueue what it lacks: (its config, its total)."""
    linked = confirm_config(config)
    storage = prepare_study(linked, url)
    optuna.load_study(study_name=linked.name, storage=storage).set_user_attr(
        "source_study", config.name
    )
    return linked, enqueue_missing(url, storage, linked.name, plan(top, seeds, config))


def load_summaries(storage: RDBStorage, study_name: str) -> list[ConfigSummary]:
    """The confirmed configurations of `study_name` ([] without a confirm study)."""
    try:
        study = optuna.load_study(study_name=confirm_name(study_name), storage=storage)
    except KeyError:
        return []
    source = storage.get_all_trials(storage.get_study_id_from_name(study_name), deepcopy=False)
    seeds = study.get_trials(deepcopy=False)
    return summarize(source, seeds, evaluate.load_scores(storage, study_name, trials=source),
                     evaluate.load_scores(storage, study.study_name, trials=seeds))


def results(config: StudyConfig, url: str, top: list[FrozenTrial],
            device: str = "cpu") -> list[ConfigSummary]:
    """After a confirm run: score the new checkpoints (and the sources) on the test split, store
    the summary; the summaries of the `top` configurations. No test split: valid values only."""
    storage = make_storage(url, HeartbeatConfig(interval=0))
    linked = confirm_name(config.name)
    study = optuna.load_study(study_name=linked, storage=storage)
    chosen = {t.number for t in top}
    seeds = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
             if t.user_attrs.get("source_trial") in chosen]
    try:
        data = load_split(config.data, "test")
        score_missing(storage, config.name, top, data, device)
        score_missing(storage, linked, seeds, data, device)
    except BassetError as err:  # the confirmation itself is fine: say why test scores miss
        log.warning("no test scores: %s", err)
    summaries = load_summaries(storage, config.name)
    study.set_user_attr("summary", [s.as_dict() for s in summaries])
    return [s for s in summaries if s.source_trial in chosen]
