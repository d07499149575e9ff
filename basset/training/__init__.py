"""Training and using a Basset network: train() and the types its driver sees (options, hooks,
metrics, result), checkpoints, the optimiser, metrics, the run log and predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from basset.lazy import lazy_names

if TYPE_CHECKING:
    from basset.training.checkpoint import (
        Checkpoint,
        LoadedModel,
        load_model,
        read_checkpoint,
        read_history,
    )
    from basset.training.demo_source_model import make_source_model
    from basset.training.metrics import binary_metrics, nan_mean, r2_per_target
    from basset.training.predict import predict_codes, predict_proba, split_scores
    from basset.training.resident import ResidentData, codes_to_onehot
    from basset.training.seam import (
        EpochMetrics,
        StopTraining,
        TrainHooks,
        TrainOptions,
        TrainProgress,
        TrainResult,
    )
    from basset.training.trainer import TrainingDiverged, train

__all__ = [
    "Checkpoint",
    "EpochMetrics",
    "LoadedModel",
    "ResidentData",
    "StopTraining",
    "TrainHooks",
    "TrainOptions",
    "TrainProgress",
    "TrainResult",
    "TrainingDiverged",
    "binary_metrics",
    "codes_to_onehot",
    "load_model",
    "make_source_model",
    "nan_mean",
    "predict_codes",
    "predict_proba",
    "r2_per_target",
    "read_checkpoint",
    "read_history",
    "split_scores",
    "train",
]

__getattr__ = lazy_names(__name__, {
    "train": "trainer",
    "TrainingDiverged": "trainer",
    "TrainOptions": "seam",
    "TrainHooks": "seam",
    "TrainResult": "seam",
    "TrainProgress": "seam",
    "StopTraining": "seam",
    "EpochMetrics": "seam",
    "ResidentData": "resident",
    "codes_to_onehot": "resident",
    "Checkpoint": "checkpoint",
    "LoadedModel": "checkpoint",
    "load_model": "checkpoint",
    "read_checkpoint": "checkpoint",
    "read_history": "checkpoint",
    "predict_proba": "predict",
    "predict_codes": "predict",
    "split_scores": "predict",
    "binary_metrics": "metrics",
    "nan_mean": "metrics",
    "r2_per_target": "metrics",
    "make_source_model": "demo_source_model",
})
