"""The Basset network (the paper's unpadded graph and the padded one) and its layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from basset.lazy import lazy_names

if TYPE_CHECKING:
    from basset.nn.model import (
        BassetNet,
        build_model,
        check_architecture,
        conv_lengths,
        load_kipoi_state_dict,
        max_norm_,
        training_bytes,
    )
    from basset.nn.softpool import SoftPool1d

__all__ = [
    "BassetNet",
    "SoftPool1d",
    "build_model",
    "check_architecture",
    "conv_lengths",
    "load_kipoi_state_dict",
    "max_norm_",
    "training_bytes",
]

__getattr__ = lazy_names(__name__, {
    "BassetNet": "model",
    "build_model": "model",
    "check_architecture": "model",
    "conv_lengths": "model",
    "training_bytes": "model",
    "max_norm_": "model",
    "load_kipoi_state_dict": "model",
    "SoftPool1d": "softpool",
})
