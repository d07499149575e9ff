"""Basset in PyTorch: params tables, data, model, trainer. Knows nothing of the HPO service.

This module is the seam: the HPO service (hpo/) uses exactly the names in `__all__`, imported as
`from basset import ...` (tests/test_seam.py keeps it so). The names that need torch load on first
use, so that `import basset` (params tables, errors) stays light for the scripts that need no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from basset.cli.common import ArgParser, cli_entry, positive_int, setup_logging
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
from basset.lazy import lazy_names
from basset.params import (
    CONV_KEYS,
    CONV_LISTS,
    HIDDEN_LISTS,
    PADDINGS,
    PRESETS,
    JobParams,
    field_types,
    parse_params,
    read_params,
    write_params,
)
from basset.training.seam import EpochMetrics, StopTraining, TrainHooks, TrainOptions, TrainResult

if TYPE_CHECKING:
    from basset.data.demo import DEMO_SETS, make_demo
    from basset.data.h5read import BassetData, Split, check_data, load_data
    from basset.device import cpu_cores
    from basset.nn.model import check_architecture, conv_lengths, training_bytes
    from basset.training.checkpoint import load_model, read_checkpoint, read_history
    from basset.training.demo_source_model import make_source_model
    from basset.training.metrics import nan_mean
    from basset.training.predict import split_scores
    from basset.training.resident import ResidentData
    from basset.training.trainer import TrainingDiverged, train

_LAZY = {
    "load_model": "training.checkpoint",
    "read_checkpoint": "training.checkpoint",
    "read_history": "training.checkpoint",
    "Split": "data.h5read",
    "BassetData": "data.h5read",
    "ResidentData": "training.resident",
    "load_data": "data.h5read",
    "check_data": "data.h5read",
    "make_demo": "data.demo",
    "make_source_model": "training.demo_source_model",
    "DEMO_SETS": "data.demo",
    "cpu_cores": "device",
    "nan_mean": "training.metrics",
    "split_scores": "training.predict",
    "check_architecture": "nn.model",
    "conv_lengths": "nn.model",
    "training_bytes": "nn.model",
    "TrainingDiverged": "training.trainer",
    "train": "training.trainer",
}

__all__ = [
    "DEMO_SETS",
    "CONV_KEYS",
    "CONV_LISTS",
    "HIDDEN_LISTS",
    "PADDINGS",
    "PRESETS",
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

__getattr__ = lazy_names(__name__, _LAZY)
