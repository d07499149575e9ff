"""The checked pieces of a study file: keys and types, the [space] and [fixed] tables and the
references to enqueue (hpo.config assembles them into a StudyConfig)."""

from __future__ import annotations

import difflib
from typing import Any

from basset import (
    GLOBAL_POOL,
    LAST_POOL,
    LAYER_COUNTS,
    PRESETS,
    ParamsError,
    layer_name,
    parse_params,
    read_params,
)
from hpo.errors import ConfigError
from hpo.space import (
    PER_LAYER,
    SPACE_KEYS,
    TRAINING_KEYS,
    ParamSpec,
    Reference,
    value_type,
)


def hint(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(allowed)})"


def check_keys(table: dict[str, Any], allowed: list[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}{hint(key, allowed)}")


def typed(value: Any, kind: type, where: str) -> Any:
    """`value` as a `kind` (an int is a float too; a bool is not a number)."""
    allowed = (int, float) if kind is float else (kind,)
    ok = isinstance(value, allowed) and (kind is bool or not isinstance(value, bool))
    if not ok:
        raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}")
    return float(value) if kind is float else value


def at_least(value: int | float, low: int | float, where: str) -> None:
    if value < low:
        raise ConfigError(f"{where} must be >= {low}, got {value}")


def param_spec(name: str, raw: Any) -> ParamSpec:
    where = f"space.{name}"
    if name not in SPACE_KEYS and layer_name(name) is None:
        raise ConfigError(f"space: unknown key {name!r}{hint(name, SPACE_KEYS)}")
    if isinstance(raw, list):
        if len(raw) != 2:
            raise ConfigError(f"{where}: a range is [low, high], got {raw!r}")
        raw = {"low": raw[0], "high": raw[1]}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: give [low, high], {{low=, high=, log=, step=}} or {{choices=[...]}}"
            f" (fixed values go under [fixed]), got {raw!r}"
        )
    if "choices" in raw:
        check_keys(raw, ["choices"], where)
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}.choices must be a non-empty list, got {choices!r}")
        if any(isinstance(c, (list, dict)) for c in choices):
            raise ConfigError(f"{where}.choices must hold plain values, got {choices!r}")
        if name == LAST_POOL:
            for choice in choices:
                last_pool_value(choice, f"{where}.choices")
        if TRAINING_KEYS.get(name) is bool and not all(isinstance(c, bool) for c in choices):
            raise ConfigError(f"{where}.choices must be true and/or false, got {choices!r}")
        return ParamSpec(name, "categorical", choices=tuple(choices))
    check_keys(raw, ["low", "high", "log", "step"], where)
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"{where}: needs both low and high")
    one_layer = layer_name(name)
    kind = value_type(one_layer[0] if one_layer else name)
    if kind not in (int, float):
        raise ConfigError(f"{where}: {name} is not numeric; use {{choices=[...]}}")
    low = typed(raw["low"], kind, f"{where}.low")
    high = typed(raw["high"], kind, f"{where}.high")
    log = typed(raw.get("log", False), bool, f"{where}.log")
    step = raw.get("step")
    if low >= high:
        raise ConfigError(f"{where}: low must be < high, got [{low}, {high}]")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}")
    if step is not None:
        step = typed(step, kind, f"{where}.step")
        if step <= 0 or log:
            raise ConfigError(f"{where}.step must be > 0 and cannot be combined with log")
    if name in LAYER_COUNTS and low < (1 if name == "num_conv" else 0):
        raise ConfigError(f"{where}: low must be >= {1 if name == 'num_conv' else 0}, got {low}")
    return ParamSpec(name, kind.__name__, low=low, high=high, log=log, step=step)


def fixed_values(table: dict[str, Any], space: dict[str, ParamSpec]) -> dict[str, Any]:
    allowed = [k for k in SPACE_KEYS if k not in space]
    fixed: dict[str, Any] = {}
    for key, value in table.items():
        if key in space:
            raise ConfigError(f"fixed.{key}: also in [space]; a key is either searched or fixed")
        if key not in allowed:
            raise ConfigError(f"fixed: unknown key {key!r}{hint(key, allowed)}")
        if key == LAST_POOL:
            fixed[key] = last_pool_value(value, f"fixed.{key}")
            continue
        kind = value_type(key)
        per_layer = isinstance(value, list) and key in PER_LAYER  # else one value for all layers
        values = [typed(v, kind, f"fixed.{key}") for v in (value if per_layer else [value])]
        fixed[key] = values if per_layer else values[0]
    return fixed


def last_pool_value(value: Any, where: str) -> int | str:
    """A last pool width: a whole number > 0, or "global"."""
    if value == GLOBAL_POOL or (isinstance(value, int) and not isinstance(value, bool)
                                and value > 0):
        return value
    raise ConfigError(f'{where}: a last pool width is a whole number > 0 or "global", '
                      f"got {value!r}")


def reference(item: Any, index: int) -> Reference:
    where = f"enqueue[{index}]"
    if isinstance(item, str):
        if item in PRESETS:
            return Reference(item, PRESETS[item]())
        try:
            return Reference(item, read_params(item))
        except ParamsError as err:
            raise ConfigError(
                f"{where}: {err} (use {' or '.join(map(repr, PRESETS))}, a params file or a table)"
            ) from None
    if isinstance(item, dict):
        item = dict(item)
        label = item.pop("label", f"enqueue[{index}]")
        rc = item.pop("rc", False)
        if not isinstance(rc, bool):
            raise ConfigError(f"{where}.rc: true or false, got {rc!r}")
        last_pool = item.pop(LAST_POOL, None)
        if last_pool is not None:  # pool_width then lists the layers before the last
            last_pool = last_pool_value(last_pool, f"{where}.{LAST_POOL}")
            before = item.get("pool_width", [])
            item["pool_width"] = [*(before if isinstance(before, list) else [before]),
                                  1 if last_pool == GLOBAL_POOL else last_pool]
        lines = []
        for key, value in item.items():
            for v in value if isinstance(value, list) else [value]:
                lines.append(f"{key} {str(v).lower() if isinstance(v, bool) else v}")
        try:
            return Reference(str(label), parse_params("\n".join(lines), where), last_pool, rc)
        except ParamsError as err:
            raise ConfigError(str(err)) from None
    raise ConfigError(f"{where}: give {' or '.join(map(repr, PRESETS))}, a params file path or a "
                      f"table, got {item!r}")
