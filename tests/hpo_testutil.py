"""Helpers of the HPO tests: a tiny HDF5 data set, tiny study files, fake trainers.

The fakes live in an importable module so that spawned worker processes can unpickle them.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from basset.data.h5read import BassetData
from basset.params import JobParams
from basset.training.resident import ResidentData
from basset.training.seam import EpochMetrics, StopTraining, TrainHooks, TrainOptions, TrainResult
from basset.training.trainer import TrainingDiverged
from synth_data import make_data


def tiny_data() -> BassetData:
    """200 sequences x 60 bp x 3 targets with planted motifs (learnable in a few epochs)."""
    return make_data(n_train=120, n_valid=50, n_test=30, seq_len=60, num_targets=3, seed=3)


def write_h5(path: Path, data: BassetData) -> Path:
    """Basset's HDF5 layout: {split}_in (N,4,1,L) float16 one-hot, {split}_out, target_labels."""
    table = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.25] * 4])
    with h5py.File(path, "w") as h5:
        for name in ("train", "valid", "test"):
            split = getattr(data, name)
            onehot = table[split.seqs].transpose(0, 2, 1)[:, :, None, :].astype(np.float16)
            h5.create_dataset(f"{name}_in", data=onehot)
            h5.create_dataset(f"{name}_out", data=split.targets)
        h5.create_dataset("target_labels", data=np.array(data.target_labels, dtype="S"))
    return path


TINY_SPACE = """
[space]
num_conv = [1, 2]
conv_filters = [4, 12]
conv_filter_sizes = [3, 9]
pool_width = [2, 4]
num_hidden = [0, 1]
hidden_units = [8, 24]
learning_rate = { low = 1e-3, high = 3e-2, log = true }

[fixed]
batch_size = 32
"""


def study_toml(folder: Path, top: str = "", *, name: str = "tiny", data: Path | None = None,
               sampler: str = 'type = "tpe"\nn_startup_trials = 2', pruner: str = 'type = "none"',
               space: str = TINY_SPACE) -> Path:
    """A study file for the tiny data. `top`: `key = value` lines adding or replacing top-level
    keys; `sampler`/`pruner`: the bodies of those tables; `space`: the [space] and [fixed] text."""
    data = data or folder / "tiny.h5"
    keys = {"name": f'"{name}"', "data": f'"{data}"', "max_epochs": "3", "stagnant_t": "2"}
    for line in textwrap.dedent(top).strip().splitlines():
        key, value = line.split("=", 1)
        keys[key.strip()] = value.strip()
    text = "\n".join(f"{key} = {value}" for key, value in keys.items())
    text += f"\n[sampler]\n{sampler}\n[pruner]\n{pruner}\n[heartbeat]\ninterval = 0\n"
    path = folder / f"{name}.toml"
    path.write_text(text + textwrap.dedent(space))
    return path


def metrics(epoch: int, auroc: float, loss: float = 1.0) -> EpochMetrics:
    return EpochMetrics(
        epoch=epoch, train_loss=loss, valid_loss=loss, valid_metric=auroc, valid_auprc=auroc,
        target_metric=[auroc, math.nan, auroc], target_auprc=[auroc] * 3, seconds=0.01,
        seqs_per_sec=1000.0, learning_rate=0.01, is_best=True,
    )


def scripted_train(  # type: ignore[no-untyped-def]
    curves: dict[int, list[float]], before_epoch_end: Callable[[int], None] | None = None
):
    """A fake trainer that plays a fixed AUROC curve per number of conv filters (first layer),
    with the real trainer's stop rules (max_epochs, stagnant_t, a hook's StopTraining).
    `before_epoch_end(epoch)` runs before each epoch's hooks (e.g. to make an epoch slow)."""

    def train(params: JobParams, data: BassetData, *, options: TrainOptions,
              hooks: TrainHooks, resident: ResidentData | None = None) -> TrainResult:
        curve = curves[params.conv_filters[0]]
        history: list[EpochMetrics] = []
        best, best_epoch, reason = -math.inf, 0, "max_epochs"
        for epoch, auroc in enumerate(curve[: options.max_epochs], start=1):
            m = metrics(epoch, auroc)
            history.append(m)
            if before_epoch_end is not None:
                before_epoch_end(epoch)
            if auroc > best:
                best, best_epoch = auroc, epoch
            stop = epoch - best_epoch >= options.stagnant_t
            try:
                hooks.on_epoch_end(m)
            except StopTraining as err:
                reason = err.reason
                break
            if stop:
                reason = "stagnant"
                break
        return TrainResult(best_metric=best, best_epoch=best_epoch, epochs_run=len(history),
                           stop_reason=reason, history=history,
                           best_target_metric=history[best_epoch - 1].target_metric)

    return train


def diverging_train(params: JobParams, data: BassetData, *, options: TrainOptions,
                    hooks: TrainHooks, resident: ResidentData | None = None) -> TrainResult:
    """Fake trainer: a learning rate above 0.01 diverges after one epoch; others learn."""
    from basset.training.trainer import train

    if params.learning_rate > 0.01:
        hooks.on_epoch_end(metrics(1, 0.5))
        raise TrainingDiverged("the training loss is nan at epoch 2")
    return train(params, data, options=options, hooks=hooks, resident=resident)


def quick_train(params: JobParams, data: BassetData, *, options: TrainOptions,
                hooks: TrainHooks, resident: ResidentData | None = None) -> TrainResult:
    """Fake trainer for worker tests: instant epochs whose AUROC grows with the learning rate,
    so trials hammer the database as fast as it goes."""
    curve = [min(0.99, 0.5 + 10 * params.learning_rate * epoch) for epoch in range(1, 4)]
    return scripted_train({params.conv_filters[0]: curve})(
        params, data, options=options, hooks=hooks
    )


STAGGER_S = 0.5  # staggered_train's epochs after trial 0


def staggered_train(params: JobParams, data: BassetData, *, options: TrainOptions,
                    hooks: TrainHooks, resident: ResidentData | None = None) -> TrainResult:
    """Fake trainer: trial 0 ends at once (one epoch, 0.6); any other trains three epochs of
    STAGGER_S each up to 0.8, so its worker is still training when trial 0's has ended."""
    first = Path(str(options.save_prefix)).parent.name == "trial_0"
    pause = 0.0 if first else STAGGER_S
    curve = [0.6] if first else [0.6, 0.7, 0.8]
    return scripted_train({params.conv_filters[0]: curve}, lambda epoch: time.sleep(pause))(
        params, data, options=options, hooks=hooks
    )


def recording_train(params: JobParams, data: BassetData, *, options: TrainOptions,
                    hooks: TrainHooks, resident: ResidentData | None = None) -> TrainResult:
    """quick_train that first writes what the worker's data are (PREFIX_data.json): its
    process, whether the arrays are read-only maps and of which files, the targets' dtype."""
    seqs, targets = data.train.seqs, data.train.targets
    record = {
        "pid": os.getpid(),
        "writeable": bool(seqs.flags.writeable or targets.flags.writeable),
        "files": [str(getattr(a, "filename", None)) for a in (seqs, targets)],
        "targets_dtype": str(targets.dtype),
    }
    assert options.save_prefix is not None
    out = Path(f"{options.save_prefix}_data.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record))
    return quick_train(params, data, options=options, hooks=hooks)
