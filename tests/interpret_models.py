"""Hand-made Basset networks for the interpretation tests: first filter = a known motif."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from basset.data.h5write import SplitArrays, write_basset_h5
from basset.nn.model import BassetNet, build_model
from basset.params import JobParams
from basset.training.checkpoint import Checkpoint

CODES = {base: code for code, base in enumerate("ACGT")}


def encode(motif: str) -> np.ndarray:
    return np.array([CODES[b] for b in motif], dtype=np.uint8)


def planted_model(
    motif: str, seq_len: int, *, n_filters: int = 1, bias: float = -6.0, padding: str = "same"
) -> BassetNet:
    """One conv layer whose filter 0 scores `motif` (one-hot minus 0.25: a perfect site scores
    0.75 x width), the others never fire; batch norms are identities; global max pooling; the
    prediction is sigmoid(best site score + bias)."""
    width = len(motif)
    params = JobParams(
        conv_filters=[n_filters], conv_filter_sizes=[width], pool_width=[seq_len], hidden_units=[1],
        padding=padding,
    ).validate()
    model = build_model(params, seq_len, 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.weight.fill_(1.0)
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        conv = model.first_conv
        conv.weight.zero_()
        conv.bias.fill_(-1.0)
        conv.bias[0] = 0.0
        conv.weight[0] = torch.eye(4)[:, torch.from_numpy(encode(motif)).long()] - 0.25
        hidden = model.hidden[0][0]
        hidden.weight.zero_()
        hidden.weight[0, 0] = 1.0
        hidden.bias.zero_()
        model.output.weight.fill_(1.0)
        model.output.bias.fill_(bias)
    return model.eval()


def planted_codes(
    rng: np.random.Generator, n: int, seq_len: int, motif: str
) -> tuple[np.ndarray, np.ndarray]:
    """Random sequences with `motif` at a random position in each; (codes, starts)."""
    codes = rng.integers(0, 4, size=(n, seq_len), dtype=np.uint8)
    starts = rng.integers(0, seq_len - len(motif) + 1, size=n)
    for row, start in enumerate(starts):
        codes[row, start : start + len(motif)] = encode(motif)
    return codes, starts


def run_cli(main: Callable[[list[str]], int], args: list[str]) -> int:
    """A console script's exit code, whether it returns it or argparse exits."""
    try:
        return main(args)
    except SystemExit as exit_:
        return int(exit_.code)


def save_model(model: BassetNet, path: Path, labels: list[str]) -> Path:
    """A checkpoint that basset.training.checkpoint.load_model reads."""
    Checkpoint(model.state_dict(), model.params, labels, model.seq_len).save(path)
    return path


def save_data(codes: np.ndarray, path: Path) -> Path:
    """A Basset HDF5 holding `codes` in every split (targets all 1)."""
    split = SplitArrays(
        codes, np.ones((len(codes), 1), dtype=np.int8), [f"s{i}" for i in range(len(codes))]
    )
    return write_basset_h5(path, {"train": split, "valid": split, "test": split}, ["t0"])
