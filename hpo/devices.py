"""Where the workers of one run train: GPUs (packed per hpo.packing) or CPU workers, and the
torch threads each gets."""

from __future__ import annotations

import torch

from basset import cpu_cores
from hpo import packing
from hpo.config import StudyConfig
from hpo.errors import ConfigError
from hpo.packing import TrialsPerGpu


def plan_devices(
    gpus: str | None,
    trials_per_gpu: TrialsPerGpu,
    workers: int | None,
    cpu_workers: int = 1,
    *,
    config: StudyConfig | None = None,
) -> list[str]:
    """Worker devices: every GPU (or the listed ones) x trials_per_gpu ("auto": as many as fit,
    from the card's free memory and the `config` study's largest trial), else `workers` CPU
    workers (default: the study's cpu_workers)."""
    if trials_per_gpu != "auto" and trials_per_gpu < 1:
        raise ConfigError(f"--trials-per-gpu must be >= 1, got {trials_per_gpu}")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    ids = gpu_ids(gpus)
    if not ids:
        return ["cpu"] * (workers or cpu_workers)
    if workers is not None:
        raise ConfigError("--workers is for CPU runs; with GPUs use --trials-per-gpu")
    if trials_per_gpu == "auto":
        if config is None:
            raise ValueError("--trials-per-gpu auto needs the study config")
        per_gpu = {i: packing.auto_trials_per_gpu(config, i) for i in ids}
    else:
        per_gpu = {i: trials_per_gpu for i in ids}
    return [f"cuda:{i}" for i in ids for _ in range(per_gpu[i])]


def gpu_ids(gpus: str | None) -> list[int]:
    """The GPUs `--gpus` asks for (none: a CPU run); ConfigError if they are not here. Cheap:
    checked before anything is made (the demo data, the study)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == "none" or (gpus is None and count == 0):
        return []
    if count == 0:
        raise ConfigError(f"--gpus {gpus}: CUDA is not available here (use --workers for CPUs)")
    if gpus in (None, "all"):
        return list(range(count))
    try:
        ids = [int(part) for part in gpus.split(",")]
    except ValueError:
        raise ConfigError(f"--gpus takes all, none or a list like 0,2; got {gpus!r}") from None
    bad = [i for i in ids if not 0 <= i < count]
    if bad or len(set(ids)) != len(ids):
        raise ConfigError(f"--gpus {gpus}: this machine has GPUs 0..{count - 1}")
    return ids


def default_threads(n_workers: int) -> int:
    """torch threads per worker: this process's cores shared out."""
    return max(1, cpu_cores() // n_workers)
