"""Study files: `studies/<name>.toml` -> a validated StudyConfig, or one-line ConfigError.

Every relative path in a study file (storage, data, params files) is relative to the current
directory, never to the installed package, so a study's database and runs land where the user
works.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from basset import (
    DEMO_SETS,
    PADDINGS,
    field_types,
)
from hpo.errors import ConfigError
from hpo.space import (
    SEED_KEYS,
    ParamSpec,
    Reference,
    check_space,
)
from hpo.study_tables import (
    at_least,
    check_keys,
    fixed_values,
    param_spec,
    reference,
    typed,
)


def _packaged_studies() -> Path:
    """The shipped study files: hpo/studies in an installed wheel (pyproject maps the top-level
    studies/ there), else the source tree's studies/ beside hpo/ (a checkout, an editable
    install)."""
    here = Path(__file__).parent
    inside = here / "studies"
    return inside if inside.is_dir() else here.parent / "studies"


PACKAGED_STUDIES = _packaged_studies()
SAMPLERS = ("tpe", "random", "gp", "cmaes")
PRUNERS = ("asha", "hyperband", "median", "none")
TRANSFER_KEYS = ("num_hidden", "hidden_units", "hidden_dropouts", "learning_rate", "batch_size",
                 "optimization", "freeze_conv", "max_epochs", "...")


@dataclass(frozen=True)
class SamplerConfig:
    type: str = "tpe"
    n_startup_trials: int = 10
    multivariate: bool = True
    constant_liar: bool = True
    group: bool = True  # TPE: decompose the conditional (per-layer) space


@dataclass(frozen=True)
class PrunerConfig:
    type: str = "asha"
    min_resource: int = 1  # asha, hyperband: the first rung (steps: epochs or evaluations)
    reduction_factor: int = 3  # asha, hyperband
    bootstrap_count: int = 0  # hyperband
    n_startup_trials: int = 5  # median
    n_warmup_steps: int = 2  # median
    n_min_trials: int = 3  # median
    # hyperband, median: a trial whose valid AUROC rose by at least this much over its last
    # epoch is not pruned at that epoch. 0: off. (asha judges promise, not rise: not allowed.)
    keep_rising: float = 0.0


@dataclass(frozen=True)
class HeartbeatConfig:
    """Crash detection (RDB storages only): a trial silent for grace_period s is failed and
    retried up to max_retry times. interval 0 switches heartbeats off."""

    interval: int = 60
    grace_period: int = 180
    max_retry: int = 1


@dataclass
class StudyConfig:
    name: str
    source: Path
    data: Path
    storage: str | None = None  # None: BASSET_HPO_STORAGE or sqlite:///studies/<name>.db
    generate_demo_data: bool = False
    demo_set: str = "source"  # which demo set generate_demo_data makes (basset.DEMO_SETS)
    seed_model: Path | None = None  # a transfer study: every trial starts from this model
    generate_seed_model: bool = False  # train the demo source model when seed_model is missing
    metric: str = "valid_auroc"
    direction: str = "maximize"
    n_trials: int = 20
    max_epochs: int = 20  # with eval_every: evaluations (also Hyperband's max_resource)
    stagnant_t: int = 5
    eval_every: int | None = None  # training sequences between evaluations; None: an epoch
    # eval_every = "auto": seconds of training between evaluations, from which the first run
    # sets eval_every once (hpo.interval); None otherwise (and once resolved)
    eval_seconds: float | None = None
    # validation sequences each evaluation scores (a fixed subset; the trial's value is its best
    # model on the whole split); None: all of them
    eval_subset: int | None = None
    seed: int = 1
    padding: str = "same"
    cpu_workers: int = 1  # workers when there is no GPU and no --workers
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    heartbeat: HeartbeatConfig = field(default_factory=HeartbeatConfig)
    space: dict[str, ParamSpec] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    enqueue: list[Reference] = field(default_factory=list)
    warm_start: str | None = None  # `run --warm-start STUDY` (hpo.warmstart); not a file key


# --- generic table checking -------------------------------------------------------------------



def _section(table: dict[str, Any], cls: type, where: str) -> Any:
    """Build a frozen dataclass from a TOML table, checking keys and types."""
    types = field_types(cls)
    check_keys(table, list(types), where)
    values = {}
    for key, value in table.items():
        values[key] = typed(value, types[key][0], f"{where}.{key}")
    return cls(**values)


# --- the parts of a study file ------------------------------------------------------------------

_TOP: dict[str, type] = {
    "name": str, "storage": str, "data": str, "generate_demo_data": bool,
    "metric": str, "direction": str, "n_trials": int, "max_epochs": int,
    "stagnant_t": int, "seed": int, "padding": str, "cpu_workers": int, "demo_set": str,
    "seed_model": str, "generate_seed_model": bool, "eval_subset": int,
}
AUTO = "auto"
EVAL_SECONDS = 60.0  # eval_every = "auto" without eval_seconds
_TABLES = ("sampler", "pruner", "heartbeat", "space", "fixed", "enqueue")


SEED_MAX = 2**31 - 1  # worker, task and trial offsets keep every derived seed below 2**32


def check_name(name: str) -> None:
    """A study name is a file name (studies/NAME.db, studies/NAME/trial_N): no path separator,
    not `.` or `..`."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or set(name) == {"."}:
        raise ConfigError(f"name must be letters, digits, '_', '.', '-' (not only dots), "
                          f"got {name!r}")


def check_seed(seed: int, where: str) -> None:
    """Samplers take seeds in [0, 2**32); the study's base seed leaves room for its offsets."""
    if not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{where} must be in [0, {SEED_MAX}], got {seed}")


def parse_study(raw: dict[str, Any], source: Path) -> StudyConfig:
    """Validate a parsed TOML document; every problem is a one-line ConfigError."""
    check_keys(raw, [*_TOP, "eval_every", "eval_seconds", *_TABLES], "study")
    top = {key: typed(raw[key], kind, key) for key, kind in _TOP.items() if key in raw}
    top.update(_interval(raw))
    top.setdefault("name", source.stem)
    check_name(top["name"])
    if "seed" in top:
        check_seed(top["seed"], "seed")
    if "data" not in top:
        raise ConfigError("data: the path of the HDF5 data set is required")
    top["data"] = Path(top["data"])
    for key in ("n_trials", "max_epochs", "stagnant_t", "cpu_workers", "eval_subset"):
        if key in top:
            at_least(top[key], 1, key)
    if top.get("metric", "valid_auroc") != "valid_auroc":
        raise ConfigError(f"metric: only valid_auroc is supported, got {top['metric']!r}")
    if top.get("direction", "maximize") != "maximize":
        raise ConfigError(f"direction: valid_auroc is maximized, got {top['direction']!r}")
    if top.get("demo_set", "source") not in DEMO_SETS:
        raise ConfigError(
            f"demo_set must be one of {', '.join(DEMO_SETS)}, got {top['demo_set']!r}"
        )
    if "seed_model" in top:
        top["seed_model"] = Path(top["seed_model"])
    elif top.get("generate_seed_model"):
        raise ConfigError("generate_seed_model: needs seed_model (the file to make)")
    if top.get("padding", "same") not in PADDINGS:
        raise ConfigError(f"padding must be one of {', '.join(PADDINGS)}, got {top['padding']!r}")
    for key in ("sampler", "pruner", "heartbeat", "space", "fixed"):
        if key in raw and not isinstance(raw[key], dict):
            raise ConfigError(f"{key} must be a table ([{key}]), got {raw[key]!r}")

    config = StudyConfig(source=source, **top)
    config.sampler = _section(raw.get("sampler", {}), SamplerConfig, "sampler")
    config.pruner = _section(raw.get("pruner", {}), PrunerConfig, "pruner")
    config.heartbeat = _section(raw.get("heartbeat", {}), HeartbeatConfig, "heartbeat")
    _check_choices(config)
    config.space = {name: param_spec(name, spec) for name, spec in raw.get("space", {}).items()}
    config.fixed = fixed_values(raw.get("fixed", {}), config.space)
    enqueue = raw.get("enqueue", [])
    if not isinstance(enqueue, list):
        raise ConfigError(f"enqueue must be a list, got {enqueue!r}")
    config.enqueue = [reference(item, i) for i, item in enumerate(enqueue)]
    _check_transfer(config)
    if config.seed_model is None:  # a transfer study's space is checked once the seed is read
        check_space(config, config.enqueue)
    return config


def _interval(raw: dict[str, Any]) -> dict[str, Any]:
    """eval_every (a number of sequences, or "auto") and eval_seconds (with "auto" only)."""
    every = raw.get("eval_every")
    if every == AUTO:
        seconds = typed(raw.get("eval_seconds", EVAL_SECONDS), float, "eval_seconds")
        if not seconds > 0:
            raise ConfigError(f"eval_seconds must be > 0, got {seconds}")
        return {"eval_seconds": seconds}
    if "eval_seconds" in raw:
        raise ConfigError('eval_seconds: only with eval_every = "auto"')
    if every is None:
        return {}
    if isinstance(every, bool) or not isinstance(every, int):
        raise ConfigError(f'eval_every must be a number of sequences or "auto", got {every!r}')
    at_least(every, 1, "eval_every")
    return {"eval_every": every}


def _check_transfer(config: StudyConfig) -> None:
    """A transfer study takes its convolutions from the seed model; only it has the training
    keys freeze_conv and max_epochs in its space (rc: any study)."""
    for table, keys in (("space", config.space), ("fixed", config.fixed)):
        for key in keys:
            if config.seed_model is not None and key in SEED_KEYS:
                raise ConfigError(
                    f"{table}.{key}: a transfer study (seed_model) takes its convolution layers "
                    f"from the seed model; search the rest ({', '.join(TRANSFER_KEYS)})"
                )
            if config.seed_model is None and key in ("freeze_conv", "max_epochs"):
                raise ConfigError(f"{table}.{key}: only a transfer study (seed_model = "
                                  '"path/model_best.pt") has it')
    epochs = config.space.get("max_epochs")
    most = epochs.high if epochs is not None else config.fixed.get("max_epochs")
    if most is not None and most > config.max_epochs:
        raise ConfigError(f"max_epochs: the space reaches {most:g}, above the study's "
                          f"max_epochs ({config.max_epochs}), Hyperband's maximum")


def _check_choices(config: StudyConfig) -> None:
    sampler, pruner, beat = config.sampler, config.pruner, config.heartbeat
    if sampler.type not in SAMPLERS:
        raise ConfigError(
            f"sampler.type must be one of {', '.join(SAMPLERS)}, got {sampler.type!r}"
        )
    if pruner.type not in PRUNERS:
        raise ConfigError(f"pruner.type must be one of {', '.join(PRUNERS)}, got {pruner.type!r}")
    at_least(sampler.n_startup_trials, 0, "sampler.n_startup_trials")
    at_least(pruner.reduction_factor, 2, "pruner.reduction_factor")
    at_least(pruner.min_resource, 1, "pruner.min_resource")
    if pruner.type in ("asha", "hyperband") and pruner.min_resource >= config.max_epochs:
        raise ConfigError(
            f"pruner.min_resource ({pruner.min_resource}) must be < max_epochs "
            f"({config.max_epochs})"
        )
    for key in ("bootstrap_count", "n_startup_trials", "n_warmup_steps"):
        at_least(getattr(pruner, key), 0, f"pruner.{key}")
    at_least(pruner.n_min_trials, 1, "pruner.n_min_trials")
    at_least(pruner.keep_rising, 0, "pruner.keep_rising")
    if pruner.type == "asha" and pruner.keep_rising:
        raise ConfigError("pruner.keep_rising: the asha pruner judges a trial against its rung's "
                          "peers, rising or not; drop keep_rising (or use hyperband or median)")
    at_least(beat.interval, 0, "heartbeat.interval")
    at_least(beat.max_retry, 0, "heartbeat.max_retry")
    if beat.interval and beat.grace_period <= beat.interval:
        raise ConfigError(
            f"heartbeat.grace_period ({beat.grace_period}) must exceed the interval "
            f"({beat.interval})"
        )


def find_study_file(study: str) -> Path:
    """`--study NAME` -> ./studies/NAME.toml, else the packaged one; a .toml path is used as is."""
    if study.endswith(".toml"):
        path = Path(study)
        if not path.is_file():
            raise ConfigError(f"study file not found: {path}")
        return path
    for path in (Path("studies") / f"{study}.toml", PACKAGED_STUDIES / f"{study}.toml"):
        if path.is_file():
            return path
    known = sorted(p.stem for p in PACKAGED_STUDIES.glob("*.toml"))
    raise ConfigError(
        f"no study {study!r}: looked for studies/{study}.toml and the packaged studies"
        f" ({', '.join(known)})"
    )


def load_study(study: str) -> StudyConfig:
    """Find, read and validate a study file."""
    path = find_study_file(study)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    try:
        return parse_study(raw, path)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
