"""basset-sat: in-silico saturation mutagenesis of every sequence of a FASTA file."""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.progress import Progress

from basset.cli.common import (
    ArgParser,
    add_model_arguments,
    cli_entry,
    device_from_args,
    model_and_data,
    positive_int,
)
from basset.data.fasta import read_fasta_all
from basset.data.onehot import BASE_BYTES, encode_codes
from basset.errors import DataError
from basset.fileio import (
    atomic_path,
    check_distinct,
    check_output_folder,
    output_folder,
    write_text_atomic,
)
from basset.interpret.sat import (
    TABLE_COLUMNS,
    file_id,
    matrix_tsv,
    saturation_mutagenesis,
    select_targets,
    summary_rows,
)
from basset.interpret.svg import heatmap_svg, html_page
from basset.training.checkpoint import load_model

log = logging.getLogger(__name__)
SUFFIXES = (".npy", ".tsv")


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-sat",
        description="In-silico saturation mutagenesis: every position to every other base.",
    )
    add_model_arguments(parser, "FASTA of sequences (centre-trimmed/padded to the model's length)",
                        ("out_dir", "folder for sat_<id>.npy/.tsv, table.tsv, sat.html"),
                        batch_size=512)
    parser.add_argument(
        "--targets", default=None, help="comma-separated target indices or labels (default all)"
    )
    parser.add_argument("--center", type=positive_int, default=None, metavar="N",
                        help="mutate only the central N positions (default all)")
    return parser


def _read_sequences(path: Path) -> tuple[list[str], list[bytes]]:
    ids, seqs = read_fasta_all(path)
    seen: set[str] = set()
    for seq_id in map(file_id, ids):
        if seq_id in seen:
            raise DataError(
                f"{path}: two sequences share the id {seq_id!r} (file names come from ids)"
            )
        seen.add(seq_id)
    return ids, seqs


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_cli(argv)
    check_output_folder(args.out_dir)
    loaded = load_model(args.model, device=device_from_args(args))
    targets = select_targets(args.targets, loaded.target_labels)
    names = [loaded.target_labels[t] for t in targets]
    ids, seqs = _read_sequences(args.data)
    stems = [args.out_dir / f"sat_{file_id(seq_id)}" for seq_id in ids]
    check_distinct(model_and_data(args), [
        ("the output", path) for path in (args.out_dir / "table.tsv", args.out_dir / "sat.html",
                                          *(s.with_suffix(x) for s in stems for x in SUFFIXES))
    ])
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
        for seq_id, seq_codes in progress.track(
            list(zip(ids, codes, strict=True)), description="mutagenesis"
        ):
            sat = saturation_mutagenesis(
                loaded.model,
                seq_codes,
                targets,
                start=start,
                stop=start + width,
                batch_size=args.batch_size,
            )
            stem = args.out_dir / f"sat_{file_id(seq_id)}"
            with atomic_path(stem.with_suffix(".npy")) as tmp:
                with tmp.open("wb") as handle:
                    np.save(handle, sat.delta.astype(np.float32))
            write_text_atomic(stem.with_suffix(".tsv"), matrix_tsv(sat, names))
            table.extend(summary_rows(seq_id, sat, names))
            letters = BASE_BYTES[seq_codes[start : start + width]].tobytes().decode()
            for name, ref, matrix in zip(names, sat.reference, sat.delta, strict=True):
                sections.append(
                    f"<h3>{html.escape(seq_id)} &mdash; {html.escape(name)} (reference "
                    f"{ref:.3f})</h3>"
                    + heatmap_svg(matrix, letters, start=start + 1)
                )
    write_text_atomic(args.out_dir / "table.tsv", "\n".join(table) + "\n")
    legend = (
        "<p>Change in prediction when the base is mutated: red = gain, blue = loss "
        "(per map scale).</p>"
    )
    write_text_atomic(
        args.out_dir / "sat.html",
        html_page(f"Saturation mutagenesis: {args.model.name}", legend + "\n".join(sections)),
    )
    if not args.quiet:
        print(
            f"{len(ids)} sequences x {len(targets)} targets x {width} positions; wrote "
            f"{args.out_dir}/table.tsv, sat.html"
        )
    return 0
