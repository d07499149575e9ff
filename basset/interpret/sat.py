"""basset-sat: in-silico saturation mutagenesis (Basset's basset_sat.py).

Every position of a sequence's centre window is mutated to each other base (N to all four); the
mutants of one sequence go through the model in a few batched passes, and each selected target's
prediction (probability, for binary targets) minus the reference's is kept as a (4, W) matrix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from basset.errors import DataError
from basset.interpret.svg import BASES
from basset.nn.model import BassetNet
from basset.training.predict import predict_codes

log = logging.getLogger(__name__)


@dataclass
class SatMap:
    reference: np.ndarray  # (T,) prediction of the unmutated sequence, selected targets
    delta: np.ndarray  # (T, 4, W) mutant minus reference; 0 where the base is the reference's
    start: int  # window start in the sequence (0-based)


def saturation_mutagenesis(
    model: BassetNet,
    codes: np.ndarray,
    targets: Sequence[int],
    *,
    start: int = 0,
    stop: int | None = None,
    batch_size: int = 512,
) -> SatMap:
    """Mutate positions [start, stop) of one (L,) uint8 code sequence to every other base."""
    device = next(model.parameters()).device
    ref = torch.from_numpy(np.ascontiguousarray(codes, dtype=np.uint8)).to(device)
    stop = len(ref) if stop is None else stop
    window = ref[start:stop].long()
    is_mutant = torch.arange(4, device=device)[None, :] != window[:, None]  # (W, 4)
    pos, base = is_mutant.nonzero(as_tuple=True)
    mutants = ref.repeat(len(pos) + 1, 1)
    mutants[torch.arange(1, len(pos) + 1, device=device), start + pos] = base.to(torch.uint8)
    preds = predict_codes(model, mutants, batch_size=batch_size)[:, list(targets)]
    delta = torch.zeros(len(window), 4, len(targets), device=device)
    delta[pos, base] = preds[1:] - preds[0]
    return SatMap(preds[0].cpu().numpy(), delta.permute(2, 1, 0).cpu().numpy(), start)


def select_targets(spec: str | None, labels: Sequence[str]) -> list[int]:
    """'0,3' or 'Oct4,MafK' (indices or labels, comma separated) -> target indices; None: all."""
    if spec is None:
        return list(range(len(labels)))
    chosen = []
    for token in (t.strip() for t in spec.split(",")):
        if token in labels:
            chosen.append(list(labels).index(token))
        elif token.isdigit() and int(token) < len(labels):
            chosen.append(int(token))
        else:
            shown = ", ".join(labels[:10]) + (", ..." if len(labels) > 10 else "")
            raise DataError(
                f"--targets: {token!r} is neither a label nor an index below {len(labels)} "
                f"(targets: {shown})"
            )
    return chosen


def file_id(seq_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", seq_id)


def matrix_tsv(sat: SatMap, target_names: Sequence[str]) -> str:
    width = sat.delta.shape[2]
    rows = ["target\tbase\t" + "\t".join(str(sat.start + i + 1) for i in range(width))]
    for name, matrix in zip(target_names, sat.delta, strict=True):
        for base, values in zip(BASES, matrix, strict=True):
            rows.append(f"{name}\t{base}\t" + "\t".join(f"{v:.5g}" for v in values))
    return "\n".join(rows) + "\n"


TABLE_COLUMNS = (
    "seq_id", "target", "reference", "max_loss", "loss_position", "loss_base",
    "max_gain", "gain_position", "gain_base",
)


def summary_rows(seq_id: str, sat: SatMap, target_names: Sequence[str]) -> list[str]:
    rows = []
    for name, ref, matrix in zip(target_names, sat.reference, sat.delta, strict=True):
        low = np.unravel_index(np.argmin(matrix), matrix.shape)
        high = np.unravel_index(np.argmax(matrix), matrix.shape)
        rows.append(
            f"{seq_id}\t{name}\t{ref:.4f}\t{matrix[low]:.4f}\t"
            f"{sat.start + low[1] + 1}\t{BASES[low[0]]}\t"
            f"{matrix[high]:.4f}\t{sat.start + high[1] + 1}\t{BASES[high[0]]}"
        )
    return rows
