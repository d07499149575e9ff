"""Basset in PyTorch: params tables, data, model, trainer. Knows nothing of the HPO service.

This module is the seam: the HPO service (hpo/) uses exactly the names in `__all__`, imported as
`from basset import ...` (tests/test_seam.py keeps it so). The names that need torch load on first
use, so that `import basset` (params tables, errors) stays light for the scripts that need no torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from basset.api import EpochMetrics, StopTraining, TrainHooks, TrainOptions, TrainResult
from basset.cliutil import ArgParser, cli_entry, positive_int, setup_logging
from basset.errors import ArchitectureError, BassetError, ParamsError
from basset.fileio import (
    OutputError,
    atomic_path,
    check_output_file,
    describe_os_error,
    is_user_os_error,
    output_folder,
    process_alive,
    write_text_atomic,
)
from basset.params import (
    CONV_KEYS,
    CONV_LISTS,
    HIDDEN_LISTS,
    PADDINGS,
    JobParams,
    field_types,
    parse_params,
    pretrained_params,
    read_params,
    write_params,
)

if TYPE_CHECKING:
    from basset.checkpoint import load_model, read_checkpoint, read_history
    from basset.data import BassetData, ResidentData, Split, check_data, load_data
    from basset.demo import DEMO_SETS, make_demo
    from basset.demo_source import make_source_model
    from basset.device import cpu_cores
    from basset.metrics import nan_mean
    from basset.model import check_architecture, conv_lengths, training_bytes
    from basset.predict import split_scores
    from basset.trainer import TrainingDiverged, train

_LAZY = {
    "load_model": "basset.checkpoint",
    "read_checkpoint": "basset.checkpoint",
    "read_history": "basset.checkpoint",
    "Split": "basset.data",
    "BassetData": "basset.data",
    "ResidentData": "basset.data",
    "load_data": "basset.data",
    "check_data": "basset.data",
    "make_demo": "basset.demo",
    "make_source_model": "basset.demo_source",
    "DEMO_SETS": "basset.demo",
    "cpu_cores": "basset.device",
    "nan_mean": "basset.metrics",
    "split_scores": "basset.predict",
    "check_architecture": "basset.model",
    "conv_lengths": "basset.model",
    "training_bytes": "basset.model",
    "TrainingDiverged": "basset.trainer",
    "train": "basset.trainer",
}

__all__ = [
    "DEMO_SETS",
    "CONV_KEYS",
    "CONV_LISTS",
    "HIDDEN_LISTS",
    "PADDINGS",
    "ArchitectureError",
    "ArgParser",
    "BassetData",
    "BassetError",
    "EpochMetrics",
    "JobParams",
    "OutputError",
    "ParamsError",
    "ResidentData",
    "Split",
    "StopTraining",
    "TrainHooks",
    "TrainOptions",
    "TrainResult",
    "TrainingDiverged",
    "atomic_path",
    "check_architecture",
    "check_data",
    "check_output_file",
    "cli_entry",
    "conv_lengths",
    "cpu_cores",
    "describe_os_error",
    "field_types",
    "is_user_os_error",
    "load_data",
    "load_model",
    "make_demo",
    "make_source_model",
    "nan_mean",
    "output_folder",
    "parse_params",
    "positive_int",
    "pretrained_params",
    "process_alive",
    "read_checkpoint",
    "read_history",
    "read_params",
    "setup_logging",
    "split_scores",
    "train",
    "training_bytes",
    "write_params",
    "write_text_atomic",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'basset' has no attribute {name!r}")
