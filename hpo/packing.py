"""How many trials share one GPU (`--trials-per-gpu auto`) and how each is kept to its share.

The choice is a pure function of the card's memory and an estimate of one trial's peak: the
largest architecture of the study's space at its largest batch size (weights, gradients, two
optimiser states, saved activations) plus the data set each worker keeps resident on the card and
the CUDA context every process pays. Measured on an H100 (issue 7), four packed processes gave
1.3-1.9x one; more only paid with NVIDIA MPS, so the count is capped at 4, or 8 when an MPS
control daemon is already running (we never start one).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import torch

from basset import BassetError, JobParams, training_bytes
from hpo.config import StudyConfig
from hpo.errors import ConfigError
from hpo.space import ParamSpec, build_params

log = logging.getLogger(__name__)

GIB = 1 << 30
CONTEXT_BYTES = 600 << 20  # CUDA context + cuDNN/cuBLAS handles and workspaces, per process
HEADROOM = 0.9  # share of the free memory the packed workers may plan to use
MAX_PACKED = 4
MAX_PACKED_MPS = 8
MPS_DEFAULT_PIPE = "/tmp/nvidia-mps"

TrialsPerGpu = int | Literal["auto"]


def data_bytes(rows: int, seq_len: int, num_targets: int) -> int:
    """The resident data: uint8 codes and float32 targets (an upper bound: targets that are all
    0 or 1 are held as uint8, but which they are is known only once they are read)."""
    return rows * (seq_len + 4 * num_targets)


def choose_trials_per_gpu(
    free_bytes: int, per_trial_bytes: int, *, mps: bool = False
) -> int:
    """Trials that fit in `free_bytes` (each one's peak + resident data + CUDA context), 1..cap."""
    per_worker = per_trial_bytes + CONTEXT_BYTES
    fits = math.floor(HEADROOM * free_bytes / per_worker)
    return max(1, min(fits, MAX_PACKED_MPS if mps else MAX_PACKED))


def memory_fraction(workers_on_device: int) -> float:
    """The per-process cap for `set_per_process_memory_fraction`: an equal share of the card."""
    return HEADROOM / workers_on_device


def mps_running(environ: dict[str, str] | None = None) -> bool:
    """True when an NVIDIA MPS control daemon is already serving this user (its control pipe)."""
    env = os.environ if environ is None else environ
    pipe = Path(env.get("CUDA_MPS_PIPE_DIRECTORY", MPS_DEFAULT_PIPE))
    return (pipe / "control").exists()


def largest_params(config: StudyConfig, seq_len: int) -> JobParams:
    """The study's biggest trial: every range at its top, the largest of every choice."""

    def top(spec: ParamSpec, name: str) -> Any:
        if spec.kind == "categorical":
            numbers = [c for c in spec.choices if isinstance(c, (int, float))]
            return max(numbers) if len(numbers) == len(spec.choices) else spec.choices[-1]
        return spec.high

    return build_params(config, top, seq_len)


def check_largest_fits(config: StudyConfig, devices: list[str]) -> None:
    """Before any trial: the space's largest network (every range at its top) must fit in the
    memory of the devices it would train on, else trials drawn near the top would all fail."""
    shape = data_shape(config.data)
    try:
        biggest = largest_params(config, shape.seq_len)
        needed = training_bytes(biggest, shape.seq_len, shape.num_targets)
    except BassetError:  # an extreme that cannot be built: check_space and the trials say so
        return
    for device in sorted(set(devices)):
        memory = device_memory(device)
        if needed > memory:
            raise ConfigError(
                f"space: its largest network (every range at its top, batch size "
                f"{biggest.batch_size}) needs about {needed / GIB:.3g} GiB to train, {device} has "
                f"{memory / GIB:.3g} GiB; lower the upper ends of its ranges"
            )


def device_memory(device: str) -> int:
    """All the memory of a device: the card's, or the host's RAM for the CPU."""
    if device.startswith("cuda"):
        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class DataShape:
    rows: int  # train + valid sequences
    seq_len: int
    num_targets: int
    train_rows: int


def data_shape(path: Path) -> DataShape:
    """Shapes of the train and valid splits, read without loading them."""
    with h5py.File(path, "r") as h5:
        rows = sum(int(h5[f"{split}_in"].shape[0]) for split in ("train", "valid"))
        return DataShape(rows, int(h5["train_in"].shape[-1]), int(h5["train_out"].shape[1]),
                         int(h5["train_in"].shape[0]))


def auto_trials_per_gpu(config: StudyConfig, index: int) -> int:
    """`--trials-per-gpu auto` for GPU `index`: from its free memory and the study's size."""
    shape = data_shape(config.data)
    biggest = largest_params(config, shape.seq_len)
    per_trial = training_bytes(biggest, shape.seq_len, shape.num_targets) + data_bytes(
        shape.rows, shape.seq_len, shape.num_targets
    )
    free, _ = torch.cuda.mem_get_info(index)
    mps = mps_running()
    k = choose_trials_per_gpu(free, per_trial, mps=mps)
    log.info(
        "GPU %d: %.1f GiB free, about %.2f GiB per trial, MPS %s: %d trial(s) at a time",
        index, free / GIB, per_trial / GIB, "on" if mps else "off", k,
    )
    return k


def cap_memory(device: torch.device, workers_on_device: int) -> None:
    """Keep this process to its share of the card so packed workers cannot starve each other."""
    if workers_on_device > 1:
        torch.cuda.set_per_process_memory_fraction(memory_fraction(workers_on_device), device)
