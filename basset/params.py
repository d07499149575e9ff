"""Basset's params table (`key value` lines; a repeated key makes a list) <-> a typed JobParams."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from basset.errors import ParamsError
from basset.fileio import write_text_atomic

OPTIMIZERS = ("rmsprop", "adam")
TARGET_TYPES = ("binary", "continuous", "positive")
PADDINGS = ("paper", "same")
LAST_POOLS = ("max", "soft")

# Per-layer lists: which count they follow, and whether a single value is broadcast to every
# layer as Basset's table_ext does.
CONV_LISTS = ("conv_filters", "conv_filter_sizes", "pool_width", "conv_dropouts")
HIDDEN_LISTS = ("hidden_units", "hidden_dropouts")
BROADCAST = ("pool_width", "conv_dropouts", "hidden_dropouts")
# What a seeded run takes from its seed model with its convolution layers (as Basset did); the
# job gives the rest, hidden layers included.
CONV_KEYS = (*CONV_LISTS, "last_pool", "padding")


def field_types(cls: type) -> dict[str, tuple[type, bool]]:
    """Each field of the dataclass `cls`: (its type, or its elements' for a list; is a list)."""
    types = {}
    for name, hint in get_type_hints(cls).items():
        is_list = get_origin(hint) is list
        types[name] = (get_args(hint)[0] if is_list else hint, is_list)
    return types


@dataclass
class JobParams:
    """Every params-table key the model and optimiser use, with Basset's defaults.

    `padding` and `last_pool` are ours (the original parser reads them as extra keys and ignores
    them). padding: "same" is Basset HEAD's padded graph, "paper" the unpadded graph of the
    published model. last_pool: how the last conv layer pools its windows, "max" (Basset) or
    "soft", a log-mean-exp whose sharpness each filter learns: near max when sharp, near the
    mean when flat, so that the network can count a motif's sites, not only see one.
    """

    conv_filters: list[int] = field(default_factory=lambda: [10])
    conv_filter_sizes: list[int] = field(default_factory=lambda: [10])
    pool_width: list[int] = field(default_factory=list)  # empty: 1 per conv layer
    conv_dropouts: list[float] = field(default_factory=list)  # empty: 0 per conv layer
    hidden_units: list[int] = field(default_factory=lambda: [500])
    hidden_dropouts: list[float] = field(default_factory=list)  # empty: 0 per hidden layer
    batch_size: int = 128
    optimization: str = "rmsprop"
    learning_rate: float = 0.002
    momentum: float = 0.98  # RMSprop's alpha, not classical momentum
    beta1: float = 0.9
    beta2: float = 0.999
    weight_norm: float = 10.0  # max L2 norm of each output unit's weights
    coef_l2: float = 0.0
    coef_l1: float = 0.0
    target_type: str = "binary"
    batch_normalize: bool = True  # Basset cannot switch it off; accepted for compatibility
    padding: str = "same"
    last_pool: str = "max"

    def __post_init__(self) -> None:
        if self.hidden_units == [0]:  # the table's spelling of "no hidden layer" (to_table)
            self.hidden_units = []
        n_conv, n_hidden = len(self.conv_filters), len(self.hidden_units)
        if not self.pool_width:
            self.pool_width = [1] * n_conv
        if not self.conv_dropouts:
            self.conv_dropouts = [0.0] * n_conv
        if not self.hidden_dropouts:
            self.hidden_dropouts = [0.0] * n_hidden
        for name in BROADCAST:
            values = getattr(self, name)
            wanted = n_conv if name in CONV_LISTS else n_hidden
            if len(values) == 1 and wanted > 1:
                setattr(self, name, values * wanted)

    @property
    def num_conv(self) -> int:
        return len(self.conv_filters)

    @property
    def num_hidden(self) -> int:
        return len(self.hidden_units)

    def validate(self) -> JobParams:
        """Check list lengths and value ranges; raise ParamsError naming the key."""
        for names, count, what in (
            (CONV_LISTS, self.num_conv, "conv_filters"),
            (HIDDEN_LISTS, self.num_hidden, "hidden_units"),
        ):
            for name in names:
                n = len(getattr(self, name))
                if n != count:
                    raise ParamsError(
                        f"{name} has {n} value(s) but {what} has {count}: one per layer is needed"
                    )
        if self.num_conv == 0:
            raise ParamsError("conv_filters: at least one convolution layer is needed")
        positive: dict[str, list[int] | list[float]] = {
            "conv_filters": self.conv_filters,
            "conv_filter_sizes": self.conv_filter_sizes,
            "pool_width": self.pool_width,
            "hidden_units": self.hidden_units,
            "batch_size": [self.batch_size],
            "learning_rate": [self.learning_rate],
            "weight_norm": [self.weight_norm],
        }
        for name, values in positive.items():
            if any(not v > 0 or not math.isfinite(v) for v in values):
                raise ParamsError(f"{name} must be a finite number > 0, got {_show(values)}")
        for name in ("coef_l2", "coef_l1"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ParamsError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("conv_dropouts", "hidden_dropouts"):
            if any(not 0 <= v < 1 for v in getattr(self, name)):
                raise ParamsError(f"{name} must be in [0, 1), got {_show(getattr(self, name))}")
        for name in ("momentum", "beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ParamsError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        for name, allowed in (
            ("optimization", OPTIMIZERS),
            ("target_type", TARGET_TYPES),
            ("padding", PADDINGS),
            ("last_pool", LAST_POOLS),
        ):
            if getattr(self, name) not in allowed:
                raise ParamsError(
                    f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}"
                )
        return self

    def to_table(self) -> str:
        """The params table text: one `key value` line per value, lists as repeated keys."""
        lines = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "hidden_units" and not value:
                value = [0]  # no line would read back as the default, 500 units
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"{f.name}\t{_format(item)}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = field_types(JobParams)


def _show(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)  # shortest text that reads back to the same float
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def _convert(name: str, text: str, where: str) -> Any:
    kind = _FIELDS[name][0]
    try:
        if kind is int:
            number = float(text)
            if number != int(number):
                raise ValueError
            return int(number)  # OverflowError for inf
        if kind is float:
            return float(text)
        if kind is bool:
            # Basset treats every value as true (Lua truthiness); we honour an explicit false.
            if text.lower() in ("false", "0"):
                return False
            if text.lower() in ("true", "1"):
                return True
            raise ValueError
        return text
    except (ValueError, OverflowError):
        raise ParamsError(
            f"{where}: {name} needs {kind.__name__} value(s), got {text!r}"
        ) from None


def parse_params(text: str, source: str = "<params>") -> JobParams:
    """Parse params-table text. Errors name the source and line."""
    values: dict[str, list[Any]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source} line {number}"
        parts = line.split()
        if len(parts) != 2:
            raise ParamsError(f"{where}: expected 'key value', got {raw.strip()!r}")
        key, text_value = parts
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, list(_FIELDS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ParamsError(f"{where}: unknown key {key!r}{hint}")
        values.setdefault(key, []).append(_convert(key, text_value, where))
    kwargs: dict[str, Any] = {}
    for key, items in values.items():
        if _FIELDS[key][1]:
            kwargs[key] = items
        elif len(items) > 1:
            raise ParamsError(f"{source}: {key} is given {len(items)} times but takes one value")
        else:
            kwargs[key] = items[0]
    try:
        return JobParams(**kwargs).validate()
    except ParamsError as err:
        raise ParamsError(f"{source}: {err}") from None


def read_params(path: str | os.PathLike[str]) -> JobParams:
    """Read a Basset params table from a file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"params file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ParamsError(f"cannot read params file {path}: {err}") from None
    return parse_params(text, str(path))


def write_params(params: JobParams, path: str | os.PathLike[str]) -> None:
    """Write a params table atomically (temp file, then rename)."""
    write_text_atomic(path, params.validate().to_table())


# Basset's published configuration (data/models/pretrained_params.txt), the first trial of
# every study.
PRETRAINED_TABLE = """\
conv_filters\t300
conv_filters\t200
conv_filters\t200
conv_filter_sizes\t19
conv_filter_sizes\t11
conv_filter_sizes\t7
pool_width\t3
pool_width\t4
pool_width\t4
hidden_units\t1000
hidden_units\t1000
hidden_dropouts\t0.3
hidden_dropouts\t0.3
learning_rate\t0.002
weight_norm\t7
momentum\t0.98
"""


def pretrained_params() -> JobParams:
    """JobParams of Basset's pretrained_params.txt."""
    return parse_params(PRETRAINED_TABLE, "pretrained_params.txt")


def builtin_params() -> JobParams:
    """basset_train.lua's built-in network when no -job is given (docs/basset-semantics.md §2)."""
    return JobParams(
        conv_filters=[300, 300, 500],
        conv_filter_sizes=[21, 6, 4],
        pool_width=[4, 4, 4],
        hidden_units=[800],
        hidden_dropouts=[0.5],
    ).validate()


# The named architectures: a study's `enqueue` may name them.
PRESETS: dict[str, Callable[[], JobParams]] = {
    "pretrained": pretrained_params,
    "builtin": builtin_params,
}
