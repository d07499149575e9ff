"""A study's search space as plain data (`basset-hpo space --study NAME --json`): what another
engine (Ray Tune, ConfigSpace/SMAC3, a hand-written loop) needs to search the same space.

Every parameter carries its flat name (the Optuna name the service uses: `conv_filters_1`), its
type and range or choices, and, when it exists only for some layer counts, a condition
`{"num_conv": [2, 3]}`: the values of the count for which it exists (ConfigSpace's InCondition;
an engine without conditions samples it always, and `basset.params_from_flat` ignores it where
the count leaves no such layer). `fixed` holds the keys held at one value, `references` the
configurations the study runs first (flat values of the searched parameters), and `max_epochs`,
`stagnant_t` and `padding` how the study trains. A configuration becomes a JobParams with
`basset.params_from_flat({**fixed, **values}, padding=padding, seq_len=L)`; the training options
among the values (`rc`, `freeze_conv`, `max_epochs`) go to `basset.TrainOptions`.
"""

from __future__ import annotations

import json
from typing import Any

from basset import LAST_POOL, LAYER_COUNTS
from hpo.config import StudyConfig
from hpo.space import (
    TRAINING_KEYS,
    ParamSpec,
    job_key,
    layer_count,
    layer_spec,
    reference_values,
)


def space_listing(config: StudyConfig) -> dict[str, Any]:
    """The study's space, fixed keys, references and training budget as JSON-ready data."""
    params: list[dict[str, Any]] = []
    last_pool = LAST_POOL in config.space or LAST_POOL in config.fixed
    for count_key, keys in LAYER_COUNTS.items():
        counts = _counts(config, count_key)
        if count_key in config.space:
            params.append(_entry(count_key, config.space[count_key]))
        for key in keys:
            shift = 1 if key == "pool_width" and last_pool else 0
            for layer in range(max(counts) - shift):
                spec = layer_spec(config, key, layer)
                if spec is None:
                    continue
                needed = [n for n in counts if n >= layer + 1 + shift]
                condition = {count_key: needed} if needed != counts else None
                params.append(_entry(f"{key}_{layer}", spec, condition))
    for name, spec in config.space.items():
        if name == LAST_POOL or name in TRAINING_KEYS or job_key(name):
            params.append(_entry(name, spec))
    return {
        "study": config.name,
        "padding": config.padding,
        "max_epochs": config.max_epochs,
        "stagnant_t": config.stagnant_t,
        "parameters": params,
        "fixed": dict(config.fixed),
        "references": [{"label": ref.label, "values": reference_values(config, ref)}
                       for ref in config.enqueue],
    }


def listing_json(config: StudyConfig) -> str:
    return json.dumps(space_listing(config), indent=1) + "\n"


def listing_text(config: StudyConfig) -> str:
    """One line per parameter: name, range or choices, the layer counts it exists for."""
    lines = []
    for entry in space_listing(config)["parameters"]:
        shown = (f"choices {entry['choices']}" if entry["type"] == "categorical" else
                 f"{entry['type']} [{entry['low']}, {entry['high']}]" + (" log" * entry["log"]))
        condition = "".join(f"  if {key} in {values}"
                            for key, values in entry.get("condition", {}).items())
        lines.append(f"{entry['name']}\t{shown}{condition}")
    return "\n".join(lines) + "\n"


def _counts(config: StudyConfig, count_key: str) -> list[int]:
    """Every layer count a trial may have."""
    spec = config.space.get(count_key)
    if spec is not None:
        if spec.kind == "categorical":
            return sorted(int(c) for c in spec.choices)
        assert spec.low is not None and spec.high is not None
        return list(range(int(spec.low), int(spec.high) + 1, int(spec.step or 1)))
    return [layer_count(config, count_key, _not_searched)]


def _not_searched(spec: ParamSpec, name: str) -> Any:
    raise AssertionError(f"{name} is searched")  # layer_count samples searched counts only


def _entry(name: str, spec: ParamSpec, condition: dict[str, list[int]] | None = None
           ) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": spec.kind}
    if spec.kind == "categorical":
        entry["choices"] = list(spec.choices)
    else:
        entry.update(low=spec.low, high=spec.high, log=spec.log)
        if spec.step is not None:
            entry["step"] = spec.step
    if condition:
        entry["condition"] = condition
    return entry
