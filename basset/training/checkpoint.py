"""Checkpoints: PREFIX_check.pt every epoch, PREFIX_best.pt on a new best; restart; seed; load.

The format is known here only: Checkpoint <-> the dict in the file (to_dict / from_dict).

A checkpoint holds only plain types and tensors, so it loads with torch.load(weights_only=True):
a file whose unpickling would run code is refused, not executed.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from basset.errors import BassetError, DataError
from basset.fileio import write_bytes_atomic
from basset.nn.model import BassetNet, build_model
from basset.params import CONV_KEYS, JobParams, parse_params
from basset.training.seam import EpochMetrics

FORMAT = "basset-hpo checkpoint"
VERSION = 1
# EpochMetrics fields under their names in the file (Basset's, also for R2).
FILE_NAMES = {"valid_metric": "valid_auroc", "target_metric": "target_auroc"}
NAMES_IN_FILE = {v: k for k, v in FILE_NAMES.items()}

@dataclass
class TrainingState:
    """Where a run stands after an evaluation: what a restart must get back besides the
    weights."""

    epoch: int = 0  # last evaluation completed (epoch, or eval_every interval)
    best_metric: float = -math.inf
    best_epoch: int = 0
    prev_train_loss: float | None = None
    history: list[EpochMetrics] = field(default_factory=list)
    # Training steps done (with the rng's "pass" state, where a restart resumes mid-epoch);
    # None in files written before sub-epoch evaluation: `epoch` whole epochs.
    steps: int | None = None


@dataclass
class Checkpoint:
    """What PREFIX_check.pt and PREFIX_best.pt hold: the network (params, weights, the data it
    was trained for) and, for a restart, the optimiser, RNG and loop state. A model-only
    checkpoint leaves the last three empty."""

    model: dict[str, torch.Tensor]  # state_dict
    params: JobParams
    target_labels: list[str]
    seq_len: int
    optimizer: dict[str, Any] | None = None  # state_dict
    rng: dict[str, Any] | None = None  # rng_state()
    state: TrainingState = field(default_factory=TrainingState)

    def to_dict(self) -> dict[str, Any]:
        """Plain types and tensors only, so that torch.load(weights_only=True) reads it."""
        s = self.state
        return {
            "format": FORMAT,
            "version": VERSION,
            "model": self.model,
            "optimizer": self.optimizer,
            "epoch": s.epoch,
            "best_metric": s.best_metric,
            "best_epoch": s.best_epoch,
            "prev_train_loss": s.prev_train_loss,
            "steps": s.steps,
            "rng": self.rng,
            "params": self.params.to_table(),
            "target_labels": list(self.target_labels),
            "seq_len": self.seq_len,
            "history": [_file_names(dataclasses.asdict(m), FILE_NAMES) for m in s.history],
        }

    @classmethod
    def from_dict(cls, raw: Any, source: str) -> Checkpoint:
        """The checkpoint `raw` (as torch.load returns it) holds; DataError if it is not one."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise DataError(f"{source} is not a basset-hpo checkpoint")
        if raw.get("version") != VERSION:
            raise DataError(f"{source}: checkpoint version {raw.get('version')} is not supported")
        try:
            return cls(
                model=raw["model"],
                params=parse_params(raw["params"], f"{source} (params)"),
                target_labels=list(raw["target_labels"]),
                seq_len=int(raw["seq_len"]),
                optimizer=raw.get("optimizer"),
                rng=raw.get("rng"),
                state=TrainingState(
                    epoch=int(raw.get("epoch", 0)),
                    best_metric=float(raw.get("best_metric", -math.inf)),
                    best_epoch=int(raw.get("best_epoch", 0)),
                    prev_train_loss=raw.get("prev_train_loss"),
                    steps=None if raw.get("steps") is None else int(raw["steps"]),
                    history=[EpochMetrics(**_file_names(m, NAMES_IN_FILE))
                             for m in raw.get("history", [])],
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DataError(f"{source}: damaged checkpoint ({err})") from None

    def save(self, path: Path) -> None:
        """Write atomically (temp file, then rename). Serialised in memory first: torch.save's
        own writer reports a full disk as an opaque RuntimeError, a plain write as ENOSPC."""
        buffer = io.BytesIO()
        torch.save(self.to_dict(), buffer)
        write_bytes_atomic(path, buffer.getbuffer())

    def build_model(self, source: str) -> BassetNet:
        """The network this checkpoint describes, with its weights (in train mode, on the CPU)."""
        try:
            model = build_model(self.params, self.seq_len, len(self.target_labels))
            model.load_state_dict(self.model)
        except BassetError:
            raise
        except (KeyError, RuntimeError) as err:
            raise DataError(f"{source}: damaged checkpoint ({err})") from None
        return model


def _file_names(row: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names.get(key, key): value for key, value in row.items()}


def read_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Checkpoint:
    """The checkpoint in `path`, tensors on `device`; DataError for a missing, unsafe or foreign
    file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"model file not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's advice about pickle protocols: not ours to give
            warnings.simplefilter("ignore")
            raw = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # a malformed file can fail anywhere in the unpickler
        raise DataError(_load_failure(path, err)) from None
    return Checkpoint.from_dict(raw, str(path))


def _load_failure(path: Path, err: Exception) -> str:
    """Our own words for a file torch.load(weights_only=True) refused: never torch's message,
    which advises loading with weights_only=False (that would run whatever the file holds)."""
    code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
    if code:
        return (f"{path}: refused: it holds a Python object that loading would run as code "
                f"({code.group(1)}); a basset-hpo model holds none")
    return f"{path} is not a loadable basset-hpo model (not a PyTorch checkpoint, or damaged)"


def read_history(path: str | os.PathLike[str]) -> list[EpochMetrics]:
    """The epochs a checkpoint's run has completed, first to last."""
    return read_checkpoint(path).state.history


@dataclass
class LoadedModel:
    model: BassetNet  # eval mode
    params: JobParams
    target_labels: list[str]
    seq_len: int


def load_model(path: str | os.PathLike[str], device: str = "cpu") -> LoadedModel:
    """A trained model (PREFIX_best.pt or PREFIX_check.pt), in eval mode on `device`."""
    checkpoint = read_checkpoint(path)
    model = checkpoint.build_model(str(path)).to(device).eval()
    return LoadedModel(model, checkpoint.params, checkpoint.target_labels, checkpoint.seq_len)


def seeded_params(job: JobParams, seed: JobParams) -> JobParams:
    """The job on the seed model's convolution layers (its hidden layers and optimiser)."""
    values = job.to_dict()
    values.update({key: getattr(seed, key) for key in CONV_KEYS})
    return JobParams(**values).validate()


def seed_job(path: str | os.PathLike[str]) -> JobParams:
    """What a seeded run without a job trains (Basset's -seed alone): the seed's whole network,
    with the default optimiser settings."""
    seed = read_checkpoint(path).params
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


def rng_state(generator: torch.Generator, device: torch.device,
              shuffle: torch.Tensor | None = None) -> dict[str, Any]:
    """The run's random state: its own generator (initialisation, shuffles, CPU dropout), on
    CUDA the device's generator (dropout there), and mid-epoch the generator's state when that
    epoch's shuffle was drawn ("pass": a restart draws the same order again)."""
    state: dict[str, Any] = {"shuffle": generator.get_state()}
    if shuffle is not None:
        state["pass"] = shuffle
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Restore rng_state() (a checkpoint's "torch" state, the process-wide RNG that earlier
    versions also saved, is left alone: another run in the process may be using it)."""
    generator.set_state(state["shuffle"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
