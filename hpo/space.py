"""The search-space model, and search space -> JobParams: layer counts first, then the
per-layer keys they call for.

Optuna parameter names: `num_conv`, `num_hidden`, per-layer keys as `<key>_<layer>` (0-based,
e.g. `conv_filters_2`, which exists only in trials with three or more conv layers), and the
other JobParams keys under their own names.

`last_pool_width` (not a params key) is the last conv layer's pool width, searched or fixed on
its own, so that it may take the value "global": pool over every position the last convolution
leaves (global max pooling), resolved from the graph to that number when the trial's params are
built, so every trial's table is still a plain Basset params table. With it, `pool_width`
covers the layers before the last (`pool_width_0` .. `pool_width_<n-2>`; none for one layer).

A per-layer key may also be given for one layer under its Optuna name (`conv_filter_sizes_0 =
[9, 25]`): that layer, when it exists, draws from its own range, the others from the key's.

Training options (TRAINING_KEYS) are searched or fixed beside the params table: `rc`
(basset-train's -rc: reverse-complement every other epoch, validate on both strands; a trial
records it as its user attribute `rc`), and for transfer studies `freeze_conv` and `max_epochs`.
A reference table is Basset's training: its trial runs without -rc.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import optuna

from basset import (
    CONV_KEYS,
    LAST_POOL,
    LAYER_COUNTS,
    JobParams,
    ParamsError,
    field_types,
    layer_name,
    params_from_flat,
)
from hpo.errors import ConfigError

PER_LAYER = {key: count for count, keys in LAYER_COUNTS.items() for key in keys}
JOB_TYPES = field_types(JobParams)
# Training options a study may search or fix besides the params table (freeze_conv and
# max_epochs: transfer studies, seed_model).
TRAINING_KEYS: dict[str, type] = {"freeze_conv": bool, "max_epochs": int, "rc": bool}
SPACE_KEYS = sorted(
    set(JOB_TYPES) - {"padding"} | set(LAYER_COUNTS) | set(TRAINING_KEYS) | {LAST_POOL}
)
# What a transfer study takes from its seed model, never from its space.
SEED_KEYS = ("num_conv", *CONV_KEYS)
REQUIRED_PER_LAYER = ("conv_filters", "conv_filter_sizes", "hidden_units")


@dataclass(frozen=True)
class ParamSpec:
    """One searched key: an int/float range or a list of choices."""

    name: str
    kind: str  # "int", "float" or "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Reference:
    """A configuration enqueued before the sampler's own trials. A params table cannot say
    "global" or -rc: `last_pool` (when set) is the last conv layer's pool width, in place of the
    table's last `pool_width`, and `rc` the trial's -rc."""

    label: str
    params: JobParams
    last_pool: int | str | None = None
    rc: bool = False


class SearchSpace(Protocol):
    """What the functions here read of a study (hpo.config.StudyConfig is one)."""

    padding: str
    space: dict[str, ParamSpec]
    fixed: dict[str, Any]  # searchable keys held at one value (per-layer keys: or a list)


Sample = Callable[[ParamSpec, str], Any]


def value_type(key: str) -> type:
    """The Python type of one value of a searchable key (a layer count is an int; so is a last
    pool width, unless it is "global")."""
    if key in TRAINING_KEYS:
        return TRAINING_KEYS[key]
    return int if key in LAYER_COUNTS or key == LAST_POOL else JOB_TYPES[key][0]


def job_key(key: str) -> bool:
    """A params-table key that is neither per layer (nor one layer's) nor a layer count."""
    return (key not in PER_LAYER and key not in LAYER_COUNTS and key not in TRAINING_KEYS
            and key != LAST_POOL and layer_name(key) is None)


def layer_spec(config: SearchSpace, key: str, layer: int) -> ParamSpec | None:
    """The range layer `layer` of `key` draws from: its own, else the key's (None: not searched)."""
    return config.space.get(f"{key}_{layer}", config.space.get(key))


def build_params(config: SearchSpace, sample: Sample, seq_len: int | None = None) -> JobParams:
    """JobParams from the study's fixed keys plus `sample(spec, optuna_name)` for searched keys,
    through basset's flat form (params_from_flat: the names are the Optuna names).

    A "global" last pool width is resolved for sequences of `seq_len` bp; seq_len None (checking
    a space before its data are known) makes it 1, which validates the same as any width."""
    flat: dict[str, Any] = {}
    last_pool = LAST_POOL in config.space or LAST_POOL in config.fixed
    for count_key, keys in LAYER_COUNTS.items():
        count = flat[count_key] = layer_count(config, count_key, sample)
        for key in keys:
            layers = count - 1 if key == "pool_width" and last_pool else count
            specs = [layer_spec(config, key, i) for i in range(layers)]
            if key in config.space or any(specs):
                if not all(specs):
                    raise ConfigError(f"{key}: a layer has no range (give {key} in [space])")
                flat.update({f"{key}_{i}": sample(spec, f"{key}_{i}")
                             for i, spec in enumerate(specs) if spec is not None})
            elif key in config.fixed:
                flat[key] = config.fixed[key]
            elif key in REQUIRED_PER_LAYER:
                raise ConfigError(f"{key}: search it in [space] or set it in [fixed]")
        if count_key == "num_conv" and last_pool:
            flat[LAST_POOL] = (sample(config.space[LAST_POOL], LAST_POOL)
                               if LAST_POOL in config.space else config.fixed[LAST_POOL])
    for key, spec in config.space.items():
        if job_key(key):
            flat[key] = sample(spec, key)
    for key, value in config.fixed.items():
        if job_key(key):
            flat[key] = value
    return params_from_flat(flat, padding=config.padding, seq_len=seq_len)


def build_training(config: SearchSpace, sample: Sample) -> dict[str, Any]:
    """The training options (TRAINING_KEYS) the study searches or fixes."""
    values = {key: sample(spec, key) for key, spec in config.space.items() if key in TRAINING_KEYS}
    values.update({key: v for key, v in config.fixed.items() if key in TRAINING_KEYS})
    return values


def layer_count(config: SearchSpace, count_key: str, sample: Sample) -> int:
    if count_key in config.space:
        return int(sample(config.space[count_key], count_key))
    if count_key in config.fixed:
        return int(config.fixed[count_key])
    for key in LAYER_COUNTS[count_key]:
        if isinstance(config.fixed.get(key), list):
            last = key == "pool_width" and (LAST_POOL in config.space or LAST_POOL in config.fixed)
            return len(config.fixed[key]) + last
    raise ConfigError(f"{count_key}: search it in [space], or fix it (or a per-layer list)")


def suggest(trial: optuna.Trial, spec: ParamSpec, name: str) -> Any:
    """Ask the trial for one value of `spec` under the Optuna name `name`."""
    if spec.kind == "categorical":
        return trial.suggest_categorical(name, list(spec.choices))
    assert spec.low is not None and spec.high is not None, "a range has both ends"
    if spec.kind == "int":
        return trial.suggest_int(
            name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log
        )
    return trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)


def distribution(spec: ParamSpec) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution `suggest` records for `spec`."""
    d = optuna.distributions
    if spec.kind == "categorical":
        return d.CategoricalDistribution(list(spec.choices))
    if spec.kind == "int":
        return d.IntDistribution(int(spec.low), int(spec.high), log=spec.log,  # type: ignore[arg-type]
                                 step=int(spec.step or 1))
    return d.FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)  # type: ignore[arg-type]


def spec_of(config: SearchSpace, name: str) -> ParamSpec | None:
    """The spec behind an Optuna parameter name (`lr`, `conv_filters_2`), None if not searched."""
    if name in config.space:
        return config.space[name]
    key, _, layer = name.rpartition("_")
    return config.space.get(key) if layer.isdigit() and key in PER_LAYER else None


def space_changes(config: SearchSpace,
                  trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    """How the study's recorded distributions differ from `config`'s space, one phrase each
    (Optuna itself fails a trial on a changed categorical, and mixes changed ranges)."""
    recorded: dict[str, optuna.distributions.BaseDistribution] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            recorded.setdefault(name, dist)
    changes = []
    for name, before in sorted(recorded.items()):
        spec = spec_of(config, name)
        if spec is None:
            changes.append(f"{name} is no longer searched")
        elif distribution(spec) != before:
            changes.append(f"{name} {_shown(before)} -> {_shown(distribution(spec))}")
    return changes


def _shown(dist: optuna.distributions.BaseDistribution) -> str:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return f"choices {list(dist.choices)}"
    low, high = dist.low, dist.high  # type: ignore[attr-defined]
    extra = " log" if dist.log else ""  # type: ignore[attr-defined]
    if getattr(dist, "step", None) not in (None, 1):
        extra += f" step {dist.step}"  # type: ignore[attr-defined]
    return f"[{low}, {high}]{extra}"


def suggest_params(trial: optuna.Trial, config: SearchSpace, seq_len: int) -> JobParams:
    """The trial's JobParams (validated) for `seq_len` bp sequences (needed by a "global" last
    pool width). ParamsError if the combination is invalid."""
    return build_params(config, lambda spec, name: suggest(trial, spec, name), seq_len).validate()


def suggest_training(trial: optuna.Trial, config: SearchSpace) -> dict[str, Any]:
    """The trial's training options (TRAINING_KEYS) from the space."""
    return build_training(config, lambda spec, name: suggest(trial, spec, name))


def reference_values(config: SearchSpace, reference: Reference) -> dict[str, Any]:
    """Optuna parameter values that make a trial reproduce `reference` exactly."""
    job = reference.params
    values: dict[str, Any] = {}
    for count_key, keys in LAYER_COUNTS.items():
        if count_key in config.space:
            values[count_key] = len(getattr(job, keys[0]))
        for key in keys:
            per_layer = getattr(job, key)
            if key == "pool_width" and LAST_POOL in config.fixed | config.space:
                per_layer = per_layer[:-1]
            values.update({f"{key}_{i}": v for i, v in enumerate(per_layer)
                           if layer_spec(config, key, i) is not None})
    if LAST_POOL in config.space:
        last = reference.last_pool
        values[LAST_POOL] = job.pool_width[-1] if last is None else last
    if "rc" in config.space:
        values["rc"] = reference.rc
    for key in config.space:
        if job_key(key):
            values[key] = getattr(job, key)
    return values


def check_space(config: SearchSpace, references: list[Reference]) -> None:
    """Fail before anything starts if the space's extremes or a reference cannot be built."""
    for corner, pick in (("low", 0), ("high", -1)):
        def sample(spec: ParamSpec, name: str, pick: int = pick) -> Any:
            if spec.kind == "categorical":
                return spec.choices[pick]
            return spec.low if pick == 0 else spec.high

        try:
            build_params(config, sample).validate()
        except ParamsError as err:
            raise ConfigError(f"space ({corner} end of every range): {err}") from None
    for index, ref in enumerate(references):
        _check_reference(config, ref, f"enqueue[{index}] ({ref.label})")


def _check_reference(config: SearchSpace, ref: Reference, where: str) -> None:
    if ref.rc and "rc" not in config.space and config.fixed.get("rc") is not True:
        raise ConfigError(f"{where}: rc = true, but the study neither searches rc nor fixes it")
    if ref.last_pool is not None and LAST_POOL not in config.space:
        raise ConfigError(f"{where}: {LAST_POOL} given, but the study does not search it")
    values = reference_values(config, ref)
    for name, value in values.items():
        spec = config.space[name.rsplit("_", 1)[0] if name not in config.space else name]
        if spec.kind == "categorical" and value not in spec.choices:
            raise ConfigError(
                f"{where}: {name} = {value!r} is not among the choices {spec.choices}"
            )
        if spec.kind != "categorical" and not spec.low <= value <= spec.high:
            raise ConfigError(
                f"{where}: {name} = {value!r} is outside the space's range [{spec.low}, "
                f"{spec.high}] (Optuna would run it anyway); widen the range or drop the reference"
            )
    try:
        built = build_params(config, lambda spec, name: values[name])
    except KeyError as err:
        raise ConfigError(f"{where}: has no value for {err.args[0]}") from None
    wanted = dataclasses.replace(ref.params, padding=config.padding)
    for f in dataclasses.fields(JobParams):
        mine, theirs = getattr(built, f.name), getattr(wanted, f.name)
        if mine != theirs:
            raise ConfigError(
                f"{where}: {f.name} is {theirs} but the study would use {mine};"
                " search that key or fix it to the reference's value"
            )
