"""The study's evaluation interval, fixed once for all its workers and hosts.

`eval_every = N` in a study file: every trial evaluates every N training sequences.
`eval_every = "auto"`: the first `run` of the study times its reference trial (the first
enqueued configuration, else the space's largest) on its first worker's device for a few
seconds, in a child process, and sets N so that one interval trains for about `eval_seconds`
seconds on that hardware (CPU workers sharing fewer cores than their threads slow each other:
the rate is scaled by that share). N goes into the study (user attr `eval_every`), and every
later run, on any host, uses the recorded N: the pruner compares trials at the same sequence
counts. A study whose trials have evaluated at one N refuses another.
"""

from __future__ import annotations

import logging
import math
import multiprocessing as mp
from dataclasses import replace
from typing import Any

import optuna

from basset import JobParams, cpu_cores, setup_logging, train_rate
from hpo import packing
from hpo.config import StudyConfig
from hpo.errors import ConfigError
from hpo.space import build_params, reference_values
from hpo.storage import StudyLock, make_engine

log = logging.getLogger(__name__)
ATTR = "eval_every"  # the study's recorded interval: training sequences, or EPOCH
TIMING_ATTR = "eval_every_timing"  # how "auto" chose it
EPOCH = "epoch"
TIMING_S = 10.0  # the reference trial's timed seconds (at least 4 steps, after as many warm-up)


def timed_params(config: StudyConfig, seq_len: int) -> tuple[str, JobParams]:
    """What "auto" times: the first enqueued reference as its trial trains it, else the
    space's largest network; (its label, its params)."""
    if config.enqueue:
        values = reference_values(config, config.enqueue[0])
        params = build_params(config, lambda spec, name: values[name], seq_len)
        return config.enqueue[0].label, params
    return "the space's largest", packing.largest_params(config, seq_len)


def interval_from_rate(seqs_per_s: float, seconds: float) -> int:
    """Sequences in `seconds` at that rate, to two significant figures (at least 1)."""
    raw = max(1.0, seqs_per_s * seconds)
    scale = 10 ** max(0, math.floor(math.log10(raw)) - 1)
    return max(1, round(raw / scale) * scale)


def worker_share(devices: list[str], threads: int, cores: int) -> float:
    """The share of its device one worker gets: CPU workers whose threads outnumber the cores
    split them; trials packed on one GPU split it."""
    if devices[0] == "cpu":
        return min(1.0, cores / (len(devices) * threads))
    return 1.0 / devices.count(devices[0])


def _time_in_child(params: JobParams, seq_len: int, num_targets: int, device: str,
                   threads: int, out: Any) -> None:
    """The child's side: one rate on the device, sent back (or the error's text)."""
    import torch

    setup_logging(quiet=True)
    torch.set_num_threads(threads)
    try:
        out.put(train_rate(params, seq_len, num_targets, device=device, seconds=TIMING_S))
    except Exception as err:  # any failure: the run's one line, below
        out.put(f"{type(err).__name__}: {err}")


def time_reference(config: StudyConfig, device: str, threads: int) -> tuple[str, float]:
    """(what was timed, its training sequences per second on `device` with `threads` threads),
    measured in a child process (the run keeps no torch or CUDA state of its own)."""
    shape = packing.data_shape(config.data)
    label, params = timed_params(config, shape.seq_len)
    context = mp.get_context("spawn")
    out = context.SimpleQueue()
    child = context.Process(target=_time_in_child, name="basset-hpo-timing",
                            args=(params, shape.seq_len, shape.num_targets, device, threads, out))
    child.start()
    child.join()
    answer = out.get() if not out.empty() else f"the timing process exited {child.exitcode}"
    if isinstance(answer, str):
        raise ConfigError(f'eval_every = "auto": timing {label} on {device} failed: {answer}')
    return label, float(answer)


def resolve(config: StudyConfig, url: str, storage: optuna.storages.BaseStorage,
            devices: list[str], threads: int) -> StudyConfig:
    """The config with the study's recorded interval (recording it on the study's first run;
    "auto" timed here); ConfigError when the study has evaluated at another one."""
    study_id = storage.get_study_id_from_name(config.name)
    recorded = storage.get_study_user_attrs(study_id).get(ATTR)
    if config.eval_seconds is not None and recorded is None:
        label, rate = time_reference(config, devices[0], threads)
        share = worker_share(devices, threads, cpu_cores())
        every = interval_from_rate(rate * share, config.eval_seconds)
        timing = {"timed": label, "device": devices[0], "threads": threads,
                  "seqs_per_s": rate, "share": share, "eval_seconds": config.eval_seconds}
        recorded = _record(config, url, storage, study_id, every, timing)
        log.info("eval_every auto: %s trains %.0f seq/s on %s (x %.2f shared): every %d "
                 "sequences, about %g s", label, rate, devices[0], share, recorded,
                 config.eval_seconds)
    if config.eval_seconds is not None:
        return replace(config, eval_every=None if recorded == EPOCH else recorded,
                       eval_seconds=None)
    wanted = EPOCH if config.eval_every is None else config.eval_every
    if recorded is None:
        _record(config, url, storage, study_id, wanted, None)
    elif recorded != wanted and _has_evaluated(storage, study_id):
        raise ConfigError(
            f"study {config.name} evaluates every {_say(recorded)} (its trials were compared "
            f"there); eval_every = {_say(wanted)} would compare them elsewhere: restore it, "
            'use "auto" (the recorded interval), or give the study a new name')
    elif recorded != wanted:
        _record(config, url, storage, study_id, wanted, None, replace_it=True)
    return config


def _say(value: int | str) -> str:
    return "epoch" if value == EPOCH else f"{value} training sequences"


def _has_evaluated(storage: optuna.storages.BaseStorage, study_id: int) -> bool:
    return any(t.intermediate_values for t in storage.get_all_trials(study_id, deepcopy=False))


def _record(config: StudyConfig, url: str, storage: optuna.storages.BaseStorage, study_id: int,
            every: int | str, timing: dict[str, Any] | None, *,
            replace_it: bool = False) -> int | str:
    """Record the interval under the study lock unless another run (another host) recorded
    one meanwhile; the study's interval."""
    engine = make_engine(url)
    try:
        with StudyLock(url, config.name, engine):
            recorded = storage.get_study_user_attrs(study_id).get(ATTR)
            if recorded is not None and not replace_it:
                return recorded
            storage.set_study_user_attr(study_id, ATTR, every)
            if timing is not None:
                storage.set_study_user_attr(study_id, TIMING_ATTR, timing)
            return every
    finally:
        engine.dispose()
