"""One flat configuration -> JobParams: how an engine that samples plain named values (Optuna,
Ray Tune, ConfigSpace/SMAC3, a grid, a hand-written loop) hands them to the trainer. The HPO
service builds its trials' params through the same function.

Names: `num_conv` and `num_hidden` (layer counts), per-layer keys as `<key>_<layer>` (0-based:
`conv_filters_0`, `hidden_units_1`), `last_pool_width` (the last conv layer's pool width: a
number, or "global" for one pool over every position the last convolution leaves), and every
other params-table key under its own name. A per-layer key may instead be given whole under its
own name: a list (one value per layer) or one value for every layer. With `last_pool_width`,
`pool_width` covers the layers before the last only.

Values of layers beyond the count are ignored (engines without conditional spaces sample them
anyway), and so are training options (the fields of TrainOptions, such as `rc`: the caller
passes them to train() itself). Any other name is a ParamsError.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from basset.errors import ParamsError
from basset.nn.model import conv_lengths
from basset.params import CONV_LISTS, HIDDEN_LISTS, JobParams, field_types
from basset.training.seam import TrainOptions

LAYER_COUNTS = {"num_conv": CONV_LISTS, "num_hidden": HIDDEN_LISTS}
LAST_POOL = "last_pool_width"
GLOBAL_POOL = "global"
_PER_LAYER = {key for keys in LAYER_COUNTS.values() for key in keys}
_JOB_FIELDS = set(field_types(JobParams))
_TRAINING = {f.name for f in dataclasses.fields(TrainOptions)}


def params_from_flat(values: Mapping[str, Any], *, padding: str | None = None,
                     seq_len: int | None = None) -> JobParams:
    """JobParams (not yet validated: call .validate()) from one flat configuration.

    `padding` overrides a `padding` among the values. `seq_len` resolves a "global" last pool
    width to the last convolution's output length for sequences of that many bp; without it a
    global pool becomes 1 (checking a space before its data are known validates the same).
    ParamsError for an unknown name or a layer without a value.
    """
    kwargs: dict[str, Any] = {}
    last_pool = LAST_POOL in values
    for count_key, keys in LAYER_COUNTS.items():
        count = _count(values, count_key, keys[0])
        if count is None:
            continue
        for key in keys:
            layers = _layer_values(values, key, count - 1 if key == "pool_width" and last_pool
                                   else count)
            if layers is not None:
                kwargs[key] = layers
        if count_key == "num_conv" and last_pool:
            kwargs["pool_width"] = [*kwargs.get("pool_width", [1] * (count - 1)),
                                    values[LAST_POOL]]
    for name, value in values.items():
        if name in _JOB_FIELDS and name not in _PER_LAYER:
            kwargs[name] = value
        elif not _known(name):
            raise ParamsError(f"unknown parameter {name!r} (not a params-table key, a layer "
                              "count, a per-layer <key>_<layer> or a training option)")
    if padding is not None:
        kwargs["padding"] = padding
    if kwargs.get("pool_width") and kwargs["pool_width"][-1] == GLOBAL_POOL:
        kwargs["pool_width"][-1] = _global_pool(kwargs, seq_len)
    return JobParams(**kwargs)


def layer_name(name: str) -> tuple[str, int] | None:
    """("conv_filters", 0) for a one-layer name such as "conv_filters_0", else None."""
    key, _, index = name.rpartition("_")
    return (key, int(index)) if key in _PER_LAYER and index.isdigit() else None


def _known(name: str) -> bool:
    return (name in _JOB_FIELDS or name in LAYER_COUNTS or name == LAST_POOL
            or name in _TRAINING or layer_name(name) is not None)


def _count(values: Mapping[str, Any], count_key: str, first: str) -> int | None:
    """The layer count: given, else the length of the first per-layer key's list or run of
    `<key>_<i>` names; None when nothing says (JobParams' default then)."""
    if count_key in values:
        return int(values[count_key])
    if isinstance(values.get(first), list):
        return len(values[first])
    count = 0
    while f"{first}_{count}" in values:
        count += 1
    return count or None


def _layer_values(values: Mapping[str, Any], key: str, layers: int) -> list[Any] | None:
    names = [f"{key}_{i}" for i in range(layers)]
    missing = [name for name in names if name not in values]
    if not missing:
        return [values[name] for name in names]
    if key in values:
        whole = values[key]
        return list(whole) if isinstance(whole, list) else [whole] * layers
    if len(missing) < len(names):
        raise ParamsError(f"{key}: no value for {', '.join(missing)} ({layers} layers)")
    return None


def _global_pool(kwargs: dict[str, Any], seq_len: int | None) -> int:
    """The pool width that leaves one position after the last convolution: its output length
    (1 when the graph leaves nothing there, which check_architecture then refuses)."""
    if seq_len is None:
        return 1
    probe = JobParams(**{**kwargs, "pool_width": [*kwargs["pool_width"][:-1], 1]})
    return max(conv_lengths(probe, seq_len)[-1][0], 1)
