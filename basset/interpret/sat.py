"""basset-sat: in-silico saturation mutagenesis (Basset's basset_sat.py).

Every position of a sequence's centre window is mutated to each other base (N to all four); the
mutants of one sequence go through the model in a few batched passes, and each selected target's
prediction (probability, for binary targets) minus the reference's is kept as a (4, W) matrix.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from basset.checkpoint import load_model
from basset.cliutil import ArgParser, cli_entry, positive_int, setup_logging
from basset.device import add_device_args, device_from_args
from basset.errors import DataError
from basset.fasta import read_fasta_all
from basset.fileio import (
    atomic_path,
    check_output_folder,
    output_folder,
    write_text_atomic,
)
from basset.interpret.svg import BASES, heatmap_svg, html_page
from basset.model import BassetNet
from basset.onehot import BASE_BYTES, encode_codes
from basset.predict import predict_codes

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


def _file_id(seq_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", seq_id)


def _matrix_tsv(sat: SatMap, target_names: Sequence[str]) -> str:
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


def _summary_rows(seq_id: str, sat: SatMap, target_names: Sequence[str]) -> list[str]:
    rows = []
    for name, ref, matrix in zip(target_names, sat.reference, sat.delta, strict=True):
        low = np.unravel_index(np.argmin(matrix), matrix.shape)
        high = np.unravel_index(np.argmax(matrix), matrix.shape)
        rows.append(
            f"{seq_id}\t{name}\t{ref:.4f}\t{matrix[low]:.4f}\t{sat.start + low[1] + 1}\t{BASES[low[0]]}\t"
            f"{matrix[high]:.4f}\t{sat.start + high[1] + 1}\t{BASES[high[0]]}"
        )
    return rows



def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-sat",
        description="In-silico saturation mutagenesis: every position to every other base.",
    )
    parser.add_argument("model", type=Path, help="trained model (PREFIX_best.pt)")
    parser.add_argument("fasta", type=Path, help="sequences (centre-trimmed/padded to the model's length)")
    parser.add_argument("out_dir", type=Path, help="folder for sat_<id>.npy/.tsv, table.tsv, sat.html")
    parser.add_argument("--targets", default=None, help="comma-separated target indices or labels (default all)")
    parser.add_argument("--center", type=positive_int, default=None, metavar="N",
                        help="mutate only the central N positions (default all)")
    add_device_args(parser)
    parser.add_argument("--batch-size", type=positive_int, default=512)
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    return parser


def _read_sequences(path: Path) -> tuple[list[str], list[bytes]]:
    ids, seqs = read_fasta_all(path)
    seen: set[str] = set()
    for seq_id in map(_file_id, ids):
        if seq_id in seen:
            raise DataError(f"{path}: two sequences share the id {seq_id!r} (file names come from ids)")
        seen.add(seq_id)
    return ids, seqs


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(quiet=args.quiet)
    check_output_folder(args.out_dir)
    loaded = load_model(args.model, device=device_from_args(args))
    targets = select_targets(args.targets, loaded.target_labels)
    names = [loaded.target_labels[t] for t in targets]
    ids, seqs = _read_sequences(args.fasta)
    length = loaded.seq_len
    if any(len(s) != length for s in seqs):
        log.warning("sequences are centre-trimmed or N-padded to the model's %d bp", length)
    codes = encode_codes(seqs, length)
    width = length if args.center is None else args.center
    if width > length:
        raise DataError(f"--center {width} is longer than the model's {length} bp sequences")
    start = (length - width) // 2
    output_folder(args.out_dir)

    table = ["\t".join(TABLE_COLUMNS)]
    sections = []
    with Progress(disable=args.quiet, transient=True) as progress:
        for seq_id, seq_codes in progress.track(list(zip(ids, codes, strict=True)), description="mutagenesis"):
            sat = saturation_mutagenesis(
                loaded.model, seq_codes, targets, start=start, stop=start + width, batch_size=args.batch_size
            )
            stem = args.out_dir / f"sat_{_file_id(seq_id)}"
            with atomic_path(stem.with_suffix(".npy")) as tmp:
                with tmp.open("wb") as handle:
                    np.save(handle, sat.delta.astype(np.float32))
            write_text_atomic(stem.with_suffix(".tsv"), _matrix_tsv(sat, names))
            table.extend(_summary_rows(seq_id, sat, names))
            letters = BASE_BYTES[seq_codes[start : start + width]].tobytes().decode()
            for name, ref, matrix in zip(names, sat.reference, sat.delta, strict=True):
                sections.append(
                    f"<h3>{html.escape(seq_id)} &mdash; {html.escape(name)} (reference {ref:.3f})</h3>"
                    + heatmap_svg(matrix, letters, start=start + 1)
                )
    write_text_atomic(args.out_dir / "table.tsv", "\n".join(table) + "\n")
    legend = "<p>Change in prediction when the base is mutated: red = gain, blue = loss (per map scale).</p>"
    write_text_atomic(
        args.out_dir / "sat.html", html_page(f"Saturation mutagenesis: {args.model.name}", legend + "\n".join(sections))
    )
    if not args.quiet:
        print(f"{len(ids)} sequences x {len(targets)} targets x {width} positions; wrote {args.out_dir}/table.tsv, sat.html")
    return 0
