"""Basset in PyTorch: params tables, data, model, trainer. Knows nothing of the HPO service."""

from basset.hooks import EpochMetrics, StopTraining, TrainHooks, TrainOptions, TrainResult
from basset.params import JobParams, read_params, write_params

__all__ = [
    "EpochMetrics",
    "JobParams",
    "StopTraining",
    "TrainHooks",
    "TrainOptions",
    "TrainResult",
    "read_params",
    "train",
    "write_params",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # `basset.train` is imported lazily so that `import basset` stays light.
    if name == "train":
        from basset.trainer import train

        return train
    raise AttributeError(name)
