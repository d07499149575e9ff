"""`basset-hpo run --warm-start STUDY`: a new study starts from a finished one in its storage.

- History: every COMPLETE or PRUNED trial of the source whose parameters all have the same
  distribution in the new space is copied (params, value, per-epoch values) with the user attr
  `warm_start` = "SOURCE#NUMBER". The sampler learns from the copies; they are not trials of
  this study: they use up no --n-trials, are never its best (hpo.progress.copied) and are no
  pruner's peers (their epochs may be of other data).
- Configurations: the source's TOP best complete trials are enqueued after the references,
  with the parameters that fit the new space (the rest are sampled), user attr
  `warm_start_config` = "SOURCE#NUMBER". They train here like any trial.
"""

from __future__ import annotations

import logging
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from hpo.errors import ConfigError
from hpo.progress import WARM_START
from hpo.space import ParamSpec, SearchSpace, distribution, spec_of

log = logging.getLogger(__name__)
TOP = 3  # best configurations of the source enqueued
CONFIG = "warm_start_config"


def load_source(storage: optuna.storages.BaseStorage, name: str, target: str) -> optuna.Study:
    """The source study, a one-line ConfigError if it is missing or is the target itself."""
    if name == target:
        raise ConfigError(f"--warm-start {name}: a study cannot warm-start from itself")
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = optuna.get_all_study_names(storage)
        raise ConfigError(f"--warm-start {name}: no such study in the storage (it holds: "
                          f"{', '.join(known) or 'none'})") from None


def agrees(config: SearchSpace, trial: FrozenTrial) -> bool:
    """Every parameter of `trial` is searched in `config` with the same distribution."""
    for name, dist in trial.distributions.items():
        spec = spec_of(config, name)
        if spec is None or distribution(spec) != dist:
            return False
    return True


def copies(config: SearchSpace, source: optuna.Study) -> list[FrozenTrial]:
    """The source's finished trials that are points of `config`'s space, as new trials."""
    done = source.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return [
        create_trial(
            state=t.state, value=t.value if t.state == TrialState.COMPLETE else None,
            params=t.params, distributions=t.distributions,
            intermediate_values=t.intermediate_values,
            user_attrs={WARM_START: f"{source.study_name}#{t.number}"},
        )
        for t in done if t.params and agrees(config, t)
    ]


def _fits(spec: ParamSpec, value: Any) -> bool:
    if spec.kind == "categorical":
        return value in spec.choices
    assert spec.low is not None and spec.high is not None, "a range has both ends"
    return spec.low <= value <= spec.high


def best_configs(config: SearchSpace, source: optuna.Study,
                 top: int = TOP) -> list[tuple[int, dict[str, Any]]]:
    """(trial number, the params that fit `config`'s space) of the source's `top` best
    complete trials, best first."""
    done = [t for t in source.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None]
    ranked = sorted(done, key=lambda t: (-(t.value or 0.0), t.number))[:top]
    chosen = []
    for t in ranked:
        params = {name: value for name, value in t.params.items()
                  if (spec := spec_of(config, name)) is not None and _fits(spec, value)}
        chosen.append((t.number, params))
    return chosen


def warm_start(study: optuna.Study, config: SearchSpace, source: optuna.Study) -> None:
    """Give `study` (new, its references enqueued) the source's history and best configs."""
    history = copies(config, source)
    study.add_trials(history)
    best = best_configs(config, source)
    for number, params in best:
        study.enqueue_trial(params, user_attrs={CONFIG: f"{source.study_name}#{number}"})
    log.info("warm start from %s: %d trials copied, %d configurations enqueued",
             source.study_name, len(history), len(best))
