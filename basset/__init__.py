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
    check_distinct,
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
    PADDINGS,
    PRESETS,
    JobParams,
    field_types,
    parse_params,
    read_params,
    write_params,
)
from basset.training.seam import (
    EpochMetrics,
    StopTraining,
    TrainHooks,
    TrainOptions,
    TrainProgress,
    TrainResult,
)

if TYPE_CHECKING:
    from basset.data.demo import DEMO_SETS, make_demo
    from basset.data.h5read import BassetData, check_data, load_data
    from basset.data.shared import open_shared, shared_data
    from basset.device import cpu_cores
    from basset.nn.model import check_architecture, training_bytes
    from basset.training.checkpoint import load_model, read_checkpoint, read_history
    from basset.training.demo_source_model import make_source_model
    from basset.training.flat import (
        GLOBAL_POOL,
        LAST_POOL,
        LAYER_COUNTS,
        layer_name,
        params_from_flat,
    )
    from basset.training.optim import preload_optimizers
    from basset.training.resident import ResidentData
    from basset.training.scoring import SPLITS, Scores, load_split, score_checkpoint, split_of
    from basset.training.timing import train_rate
    from basset.training.trainer import TrainingDiverged, train
    from basset.training.validation import FullValidation, validate_checkpoint

_LAZY = {
    "load_model": "training.checkpoint",
    "read_checkpoint": "training.checkpoint",
    "read_history": "training.checkpoint",
    "BassetData": "data.h5read",
    "ResidentData": "training.resident",
    "load_data": "data.h5read",
    "check_data": "data.h5read",
    "open_shared": "data.shared",
    "shared_data": "data.shared",
    "make_demo": "data.demo",
    "make_source_model": "training.demo_source_model",
    "DEMO_SETS": "data.demo",
    "cpu_cores": "device",
    "params_from_flat": "training.flat",
    "layer_name": "training.flat",
    "LAYER_COUNTS": "training.flat",
    "LAST_POOL": "training.flat",
    "GLOBAL_POOL": "training.flat",
    "SPLITS": "training.scoring",
    "Scores": "training.scoring",
    "load_split": "training.scoring",
    "score_checkpoint": "training.scoring",
    "split_of": "training.scoring",
    "check_architecture": "nn.model",
    "training_bytes": "nn.model",
    "TrainingDiverged": "training.trainer",
    "train": "training.trainer",
    "train_rate": "training.timing",
    "FullValidation": "training.validation",
    "validate_checkpoint": "training.validation",
    "preload_optimizers": "training.optim",
}

__all__ = [
    "DEMO_SETS",
    "CONV_KEYS",
    "GLOBAL_POOL",
    "LAST_POOL",
    "LAYER_COUNTS",
    "PADDINGS",
    "PRESETS",
    "ArchitectureError",
    "ArgParser",
    "BassetData",
    "BassetError",
    "EpochMetrics",
    "FullValidation",
    "JobParams",
    "OutputError",
    "ParamsError",
    "ResidentData",
    "SPLITS",
    "Scores",
    "StopTraining",
    "TrainHooks",
    "TrainOptions",
    "TrainProgress",
    "TrainResult",
    "TrainingDiverged",
    "atomic_path",
    "check_distinct",
    "check_architecture",
    "check_data",
    "check_output_file",
    "cli_entry",
    "cpu_cores",
    "describe_os_error",
    "field_types",
    "is_user_os_error",
    "layer_name",
    "load_data",
    "load_model",
    "load_split",
    "make_demo",
    "make_source_model",
    "open_shared",
    "output_folder",
    "params_from_flat",
    "parse_params",
    "positive_int",
    "preload_optimizers",
    "process_alive",
    "read_checkpoint",
    "read_history",
    "read_params",
    "score_checkpoint",
    "setup_logging",
    "shared_data",
    "split_of",
    "train",
    "train_rate",
    "training_bytes",
    "validate_checkpoint",
    "write_params",
    "write_text_atomic",
]

__getattr__ = lazy_names(__name__, _LAZY)
