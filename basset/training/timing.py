"""How fast a network trains here: `train_rate(params, seq_len, num_targets, device=...)`, in
training sequences per second, measured on random data of that shape (a step's cost does not
depend on the values) through train() itself, so the device path is the one runs take (resident
codes, bf16 and CUDA graphs on a GPU)."""

from __future__ import annotations

import time

import numpy as np

from basset.data.h5read import BassetData, Split
from basset.params import JobParams
from basset.training.seam import TrainHooks, TrainOptions, TrainProgress
from basset.training.trainer import train

MIN_STEPS = 4  # timed steps at least, whatever `seconds` says
BATCHES = 16  # random training rows: this many batches (epochs wrap around them)


class _Timed(Exception):
    """Raised from the progress hook once enough steps were timed (ends train() early)."""


def train_rate(params: JobParams, seq_len: int, num_targets: int, *, device: str = "cpu",
               seconds: float = 10.0) -> float:
    """Training sequences per second of `params` on `device`, in steady state: the steps of the
    second half of a run of at least `seconds` and MIN_STEPS steps (the first half holds the
    warm-up: allocation, CUDA graph capture)."""
    rng = np.random.default_rng(0)
    batch = params.batch_size

    def split(rows: int) -> Split:
        return Split(rng.integers(0, 4, (rows, seq_len), dtype=np.uint8),
                     (rng.random((rows, num_targets)) < 0.3).astype(np.uint8))

    data = BassetData(split(BATCHES * batch), split(batch), None,
                      [f"t{i}" for i in range(num_targets)])
    stamps: list[float] = []

    def on_progress(_: TrainProgress) -> None:
        stamps.append(time.perf_counter())
        if len(stamps) >= 2 * MIN_STEPS and stamps[-1] - stamps[0] >= seconds:
            raise _Timed

    options = TrainOptions(max_epochs=1, eval_every=2**62, device=device, quiet=True)
    try:
        train(params, data, options=options, hooks=TrainHooks(on_progress=on_progress))
    except _Timed:
        pass
    half = len(stamps) // 2
    return (len(stamps) - 1 - half) * batch / (stamps[-1] - stamps[half])
