"""Which device a run uses (the scripts' --device/-cuda flags, autocast), and how many CPU cores
this process may use.

torch is imported only where a device is resolved, so the scripts that need no torch
(basset-preprocess, basset-demo-data) can count cores without loading it.
"""

from __future__ import annotations

import contextlib
import os
import resource
from pathlib import Path
from typing import TYPE_CHECKING

from basset.errors import BassetError

if TYPE_CHECKING:
    import torch


def cpu_cores() -> int:
    """The cores this process may run on (a worker pinned to a subset counts that subset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes of host memory a new allocation can have now: /proc/meminfo's MemAvailable (else all
    of the physical memory), less where a limit is lower: the cgroup's (a container's
    memory.max) or the address space left under `ulimit -v`."""
    found = [_meminfo_available()]
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        with contextlib.suppress(OSError, ValueError, IndexError):
            used = int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            found.append(soft - used)
    return max(0, min(found))


def _meminfo_available() -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def resolve_device(name: str) -> torch.device:
    """torch.device for "cpu", "cuda" or "cuda:N"; BassetError when it is not there."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise BassetError(f"unknown device {name!r} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BassetError(f"device {name} requested but CUDA is not available")
        count = torch.cuda.device_count()
        index = 0 if device.index is None else device.index
        if index >= count:
            raise BassetError(f"device {name} does not exist ({count} CUDA device(s))")
        device = torch.device("cuda", index)
    elif device.type != "cpu":
        raise BassetError(f"unsupported device {name!r} (use cpu, cuda or cuda:N)")
    return device


def set_cpu_threads() -> None:
    """Use no more torch threads than the cores this process may run on."""
    import torch

    if torch.get_num_threads() > cpu_cores():
        torch.set_num_threads(cpu_cores())


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA when amp is on, nothing on the CPU. Its weight-cast cache is off, as
    CUDA graph capture requires (training); prediction re-casts weights per batch, which costs
    little."""
    import torch

    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext()
def device_memory(device: torch.device) -> int:
    """All the memory of the device (the card's, or the host's RAM for the CPU)."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
