"""A study's Optuna objects: its sampler and pruner, its creation (once, before any worker),
the data it trains on and the folder its trials write to."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from basset import CONV_KEYS, check_data, load_data, load_model, make_demo, make_source_model
from hpo import dataid, packing, service_tables
from hpo.config import Reference, StudyConfig
from hpo.errors import ConfigError
from hpo.progress import REFERENCE
from hpo.space import check_space, reference_values, space_changes
from hpo.storage import (
    StudyLock,
    check_study_tables,
    make_engine,
    make_storage,
    sqlite_path,
)
from hpo.warmstart import load_source, warm_start

log = logging.getLogger(__name__)


def worker_seed(seed: int, rank: int) -> int:
    """The sampler seed of worker `rank` in a run with base `seed`: a stream of its own for every
    (seed, rank) pair. With seed + rank, runs --seed 1 and --seed 2 of two workers each would
    share a worker's stream (1 + 1 == 2 + 0) and with it half their suggestions."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])


def make_sampler(config: StudyConfig, seed: int) -> optuna.samplers.BaseSampler:
    """The study's sampler, every argument we rely on set explicitly (Optuna 4.9 and 5.x agree)."""
    s = config.sampler
    if s.type == "tpe":
        with warnings.catch_warnings():  # group=True is experimental, and chosen knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                n_startup_trials=s.n_startup_trials,
                multivariate=s.multivariate,
                group=s.group and s.multivariate,
                constant_liar=s.constant_liar,
                seed=seed,
            )
    if s.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if s.type == "gp":
        return optuna.samplers.GPSampler(
            n_startup_trials=s.n_startup_trials, deterministic_objective=False, seed=seed
        )
    try:
        import cmaes  # noqa: F401  (CmaEsSampler would only fail at the first trial)
    except ImportError:
        raise ConfigError(
            "sampler.type = cmaes needs the cmaes package: pip install cmaes"
        ) from None
    return optuna.samplers.CmaEsSampler(n_startup_trials=s.n_startup_trials, seed=seed)


def prepare_study(config: StudyConfig, url: str) -> optuna.storages.RDBStorage:
    """Create the study and the epoch table once, before any worker; a new study gets the
    reference configurations enqueued. Re-running finds the study and continues it."""
    make_sampler(config, config.seed)  # a sampler that cannot be built fails here, not in workers
    new_files = [p for p in _sqlite_files(url) if not p.exists()]
    try:
        return _prepare(config, url)
    except BaseException:
        for path in new_files:  # a database that could not even be set up (a full disk)
            if path.is_file() and path.stat().st_size == 0:
                path.unlink()
        raise


def _sqlite_files(url: str) -> list[Path]:
    path = sqlite_path(url)
    if path is None:
        return []
    return [path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", ".lock"))]


def _prepare(config: StudyConfig, url: str) -> optuna.storages.RDBStorage:
    engine = make_engine(url)
    try:
        # Database-wide, not per study: hosts starting together on a fresh PostgreSQL database
        # would otherwise race to create Optuna's tables (duplicate key in pg_type).
        with StudyLock(url, "", engine):
            check_study_tables(url, create=True)  # another application's, or a damaged one
            storage = make_storage(url, config.heartbeat)
            service_tables.create_tables(engine)
            source = (None if config.warm_start is None  # before a new study is created
                      else load_source(storage, config.warm_start, config.name))
            try:  # (create_study would log that it found the study: a line on every re-run)
                study = optuna.load_study(study_name=config.name, storage=storage)
            except KeyError:
                study = optuna.create_study(
                    study_name=config.name, storage=storage,
                    direction=optuna.study.StudyDirection[config.direction.upper()],
                )
                _name_the_metric(study, config)
            # Before any write. (`run` has checked the data; a caller that prepares a study
            # without its data, a test, records no identity.)
            identity = (dataid.check_data(storage, config.name, config.data)
                        if config.data.is_file() else None)
            trials = study.get_trials(deepcopy=False)
            changes = space_changes(config, trials)
            if changes:  # before any worker: Optuna would fail or mix every later trial
                raise ConfigError(
                    f"study {config.name} was run with another [space] ("
                    f"{'; '.join(changes[:3])}{'; ...' if len(changes) > 3 else ''}): give the "
                    "changed space a new study name, or restore it; the study is unchanged"
                )
            if identity is not None:
                dataid.record(study, identity)
            for ref in missing_references(config, trials):
                study.enqueue_trial(
                    reference_values(config, ref), user_attrs={REFERENCE: ref.label}
                )
            if source is not None and not trials:
                warm_start(study, config, source)
            elif source is not None:
                log.info("%s has trials already: --warm-start applies to a new study only",
                         config.name)
    finally:
        engine.dispose()
    return storage


def _name_the_metric(study: optuna.Study, config: StudyConfig) -> None:
    """What the value is, for the dashboard and Optuna's plots (not "Objective 0")."""
    continuous = config.fixed.get("target_type", "binary") == "continuous"
    with warnings.catch_warnings():  # experimental since 3.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([f"mean validation {'R2' if continuous else 'AUROC'}"])


def missing_references(config: StudyConfig, trials: list[FrozenTrial]) -> list[Reference]:
    """The references the study does not hold yet (each enqueued once, in order, however often
    `run` is repeated or was killed while enqueueing). A retried copy of a reference is the
    same reference, not another."""
    held = Counter(t.user_attrs.get(REFERENCE) for t in trials
                   if "failed_trial" not in t.system_attrs)
    missing = []
    for ref in config.enqueue:
        if held[ref.label] > 0:
            held[ref.label] -= 1
        else:
            missing.append(ref)
    return missing


def run_dir(config: StudyConfig, url: str) -> Path:
    """Trial folders (checkpoints): beside an SQLite database, else under ./studies/."""
    path = sqlite_path(url)
    return (path.parent if path else Path("studies")) / config.name


def ensure_data(config: StudyConfig) -> None:
    """Before any worker: make the demo data if the study asks for it, else check the file."""
    if not config.data.exists() and config.generate_demo_data:
        log.info("generating the demo data set %s", config.data)
        config.data.parent.mkdir(parents=True, exist_ok=True)
        make_demo(config.data, preset=config.demo_set)
    # DataError now rather than in every worker (every split, targets included; cheap)
    check_data(config.data, target_type=config.fixed.get("target_type", "binary"))


def check_batch_size(config: StudyConfig) -> None:
    """Before any worker (after seeded_config: a transfer study's layers come from its seed):
    a batch size the space allows must fit in the training set, else its trials all fail."""
    shape = packing.data_shape(config.data)
    batch = packing.largest_params(config, shape.seq_len).batch_size
    train_rows = shape.train_rows
    if batch > train_rows:  # every such trial would fail
        raise ConfigError(
            f"batch_size {batch} (the space's largest) is larger than the {train_rows} training "
            f"sequences of {config.data}; lower it"
        )


def seeded_config(config: StudyConfig) -> StudyConfig:
    """A transfer study with its seed model's convolution layers (and padding) as fixed keys,
    so every trial's params table shows them and `basset-train -job TABLE -seed MODEL` reruns
    it; its space checked against them. Makes the demo source model if the study asks for it.
    One-line errors: a seed that is missing or does not load, data of another sequence length.
    Other studies come back unchanged."""
    if config.seed_model is None:
        return config
    if not config.seed_model.exists() and config.generate_seed_model:
        log.info("training the demo source model %s (first use)", config.seed_model)
        make_source_model(config.seed_model)
    seed = load_model(config.seed_model)
    data = load_data(config.data, splits=("valid",))
    if data.seq_len != seed.seq_len:
        raise ConfigError(f"seed_model {config.seed_model} takes {seed.seq_len} bp sequences, "
                          f"the data {config.data} have {data.seq_len} bp")
    taken = {key: value for key, value in seed.params.to_dict().items() if key in CONV_KEYS}
    padding = taken.pop("padding")  # a study's padding is its own setting, not a [fixed] key
    seeded = replace(config, fixed={**config.fixed, **taken}, padding=padding)
    check_space(seeded, seeded.enqueue)
    return seeded
