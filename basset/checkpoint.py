"""Checkpoints: PREFIX_check.pt every epoch, PREFIX_best.pt on a new best; restart; seed; load.

A checkpoint holds only plain types and tensors, so it loads with torch.load(weights_only=True):
a file whose unpickling would run code is refused, not executed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from basset.errors import BassetError, DataError
from basset.fileio import atomic_path
from basset.model import BassetNet, build_model
from basset.params import CONV_LISTS, JobParams, parse_params

FORMAT = "basset-hpo checkpoint"
VERSION = 1

# A seeded run takes its convolution layers from the seed model (as Basset did); the job gives
# the rest, hidden layers included (Basset ignored the job's architecture altogether).
CONV_KEYS = (*CONV_LISTS, "padding")


@dataclass
class LoadedModel:
    model: BassetNet  # eval mode
    params: JobParams
    target_labels: list[str]
    seq_len: int


def save_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def read_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict of `path`; DataError for a missing, unsafe or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"model file not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a malformed file can fail anywhere in the unpickler
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path} is not a loadable basset-hpo model: {first}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise DataError(f"{path} is not a basset-hpo checkpoint")
    if checkpoint.get("version") != VERSION:
        raise DataError(f"{path}: checkpoint version {checkpoint.get('version')} is not supported")
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any], source: str) -> BassetNet:
    """Rebuild the network a checkpoint describes and load its weights."""
    try:
        params = parse_params(checkpoint["params"], f"{source} (params)")
        model = build_model(params, int(checkpoint["seq_len"]), len(checkpoint["target_labels"]))
        model.load_state_dict(checkpoint["model"])
    except BassetError:
        raise
    except (KeyError, RuntimeError) as err:
        raise DataError(f"{source}: damaged checkpoint ({err})") from None
    return model


def load_model(path: str | os.PathLike[str], device: str = "cpu") -> LoadedModel:
    """A trained model (PREFIX_best.pt or PREFIX_check.pt), in eval mode on `device`."""
    checkpoint = read_checkpoint(path)
    model = model_from_checkpoint(checkpoint, str(path)).to(device).eval()
    return LoadedModel(
        model=model,
        params=model.params,
        target_labels=list(checkpoint["target_labels"]),
        seq_len=int(checkpoint["seq_len"]),
    )


def seeded_params(job: JobParams, seed: JobParams) -> JobParams:
    """The job on the seed model's convolution layers (its hidden layers and optimiser)."""
    values = job.to_dict()
    values.update({key: getattr(seed, key) for key in CONV_KEYS})
    return JobParams(**values).validate()


def seed_job(path: str | os.PathLike[str]) -> JobParams:
    """What a seeded run without a job trains (Basset's -seed alone): the seed's whole network,
    with the default optimiser settings."""
    seed = parse_params(read_checkpoint(path)["params"], f"{path} (params)")
    hidden = JobParams(hidden_units=seed.hidden_units, hidden_dropouts=seed.hidden_dropouts)
    return seeded_params(hidden, seed)


def copy_seed_layers(model: BassetNet, seed: BassetNet) -> bool:
    """Copy the seed's convolution layers, and its hidden layers when the model's are the same
    size; the output layer (and new hidden layers) stay freshly initialised. True: the hidden
    layers were copied."""
    same_hidden = model.params.hidden_units == seed.params.hidden_units
    keep = ("conv.", "hidden.") if same_hidden else ("conv.",)
    state = {k: v for k, v in seed.state_dict().items() if k.startswith(keep)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(k.startswith(keep) for k in missing):
        raise DataError("the seed model's layers do not match the network being trained")
    return same_hidden


def rng_state(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(state["torch"].cpu())
    generator.set_state(state["shuffle"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
