"""A training run's setup: the params and data checked against each other, the seed model,
the params a restart trains, the data on the device."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from basset.data.h5read import BassetData, check_targets
from basset.device import device_memory, resolve_device
from basset.errors import DataError
from basset.nn.model import check_architecture, check_fits
from basset.params import JobParams
from basset.training.checkpoint import Checkpoint, LoadedModel, load_model, seeded_params
from basset.training.metrics import single_class_targets
from basset.training.resident import ResidentData
from basset.training.seam import TrainOptions

log = logging.getLogger(__name__)


def check_fit(params: JobParams, data: BassetData) -> None:
    """The params are valid and the data can train them."""
    if len(data.valid) == 0:
        raise DataError("the data set has no validation sequences")
    params.validate()
    check_targets(data, params.target_type)
    if params.batch_size > len(data.train):
        raise DataError(
            f"batch_size {params.batch_size} is larger than the {len(data.train)} training "
            "sequences (training drops partial batches)"
        )


def load_seed(path: Path | None, data: BassetData) -> LoadedModel | None:
    if path is None:
        return None
    seed = load_model(path)
    if seed.seq_len != data.seq_len:
        raise DataError(
            f"the seed model takes {seed.seq_len} bp sequences, the data have {data.seq_len}"
        )
    return seed


def run_params(params: JobParams, seed: LoadedModel | None, restart: Checkpoint | None,
                data: BassetData, options: TrainOptions) -> JobParams:
    """What this run trains: the job, on the seed's convolution layers; a restart's own params."""
    if seed is not None:
        params = seeded_params(params, seed.params)
    if restart is not None:
        if restart.seq_len != data.seq_len or restart.target_labels != list(data.target_labels):
            raise DataError(
                f"{options.restart} was trained on other data "
                "(sequence length or target labels differ)"
            )
        if restart.params != params:
            log.warning("restart: using the params saved in %s", options.restart)
        params = restart.params
    check_architecture(params, data.seq_len)
    device = resolve_device(options.device)
    check_fits(params, data.seq_len, data.num_targets, device_memory(device),
               f"the device ({device})")
    return params


def on_device(resident: ResidentData | None, data: BassetData,
              device: torch.device) -> ResidentData:
    if resident is None:
        return ResidentData(data, device)
    if resident.data is not data or resident.device != device:
        raise ValueError(f"resident data were built for other data or for {resident.device}")
    return resident


def warn_single_class(data: BassetData) -> None:
    single = single_class_targets(data.valid.targets)
    if single:
        labels = ", ".join(data.target_labels[t] for t in single[:10])
        more = "" if len(single) <= 10 else ", ..."
        log.warning(
            "%d of %d targets have one class only in validation and are left out of the "
            "mean AUROC: %s%s", len(single), data.num_targets, labels, more,
        )
