"""basset-preprocess: FASTA + activity table -> Basset HDF5, or --repair-scrambled IN OUT."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from basset.cli.common import ArgParser, add_split_arguments, cli_entry, split_options
from basset.data.preprocess import preprocess
from basset.data.repair import LOST_N_WARNING, repair_scrambled
from basset.progress import progress_bars

log = logging.getLogger(__name__)


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-preprocess",
        description="FASTA + activity table -> Basset HDF5 (train/valid/test one-hot and targets).",
    )
    parser.add_argument(
        "fasta",
        type=Path,
        nargs="?",
        help="sequences (plain or gzipped); headers are the table's row ids",
    )
    parser.add_argument(
        "table",
        type=Path,
        nargs="?",
        help="activity table: header of target labels, then id v1 v2 ...",
    )
    parser.add_argument("out", type=Path, nargs="?", help="HDF5 file to write")
    parser.add_argument(
        "--repair-scrambled",
        nargs=2,
        type=Path,
        metavar=("IN", "OUT"),
        help="instead: write OUT, the HDF5 IN (from Basset's 2020 seq_hdf5.py) with its "
        "scrambled one-hot restored",
    )
    add_split_arguments(parser, "-s", "--seed")
    parser.add_argument(
        "-e",
        "--extend",
        type=int,
        default=None,
        metavar="L",
        help="centre-trim/pad every sequence to L bp",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    return parser


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_cli(argv)
    paths = [args.fasta, args.table, args.out]
    if args.repair_scrambled:
        if any(paths):
            parser.error("--repair-scrambled takes no other paths than IN and OUT")
        source, out = args.repair_scrambled
        with progress_bars(args.quiet) as progress:
            counts = repair_scrambled(source, out, onehot_dtype=args.dtype, progress=progress)
        log.warning("%s", LOST_N_WARNING)
        if not args.quiet:
            shown = ", ".join(f"{name} {n}" for name, n in counts.items())
            print(f"repaired {shown} sequences into {out} ({args.dtype} one-hot)")
        return 0
    if not all(paths):
        parser.error("the following arguments are required: fasta, table, out")
    summary = preprocess(
        args.fasta,
        args.table,
        args.out,
        extend=args.extend,
        **split_options(args),
        quiet=args.quiet,
    )
    if not args.quiet:
        print(summary)
    return 0
