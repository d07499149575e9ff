"""basset-demo-data: write a demo data set (JASPAR-motif targets) as Basset HDF5."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from basset.cli.common import ArgParser, cli_entry, positive_int, seed_int, split_size
from basset.data.demo import DEMO_SETS, make_demo
from basset.data.h5write import ONEHOT_DTYPES


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-demo-data",
        description="Write the demo data set (JASPAR-motif targets) as Basset HDF5.",
    )
    parser.add_argument("out", type=Path, help="HDF5 file to write")
    parser.add_argument(
        "--set", dest="preset", choices=list(DEMO_SETS), default="source",
        help="source: 12 targets, 6000 sequences (default); transfer: a small set with 8 other "
        "targets (600 train / 300 valid / 1000 test) to fine-tune a source model on",
    )
    parser.add_argument("--seed", type=seed_int, default=1, help="generator seed (default 1)")
    parser.add_argument(
        "--n-seqs", type=positive_int, help="number of sequences (default: the set's, 6000 or 1900)"
    )
    parser.add_argument(
        "--seq-len", type=int, default=200, help="sequence length in bp (default 200)"
    )
    parser.add_argument(
        "--valid", type=split_size,
        help="validation fraction (<1) or count (default: the set's, 1/6 or 300)",
    )
    parser.add_argument(
        "--test",
        type=split_size,
        help="test fraction (<1) or count (default: the set's, 1/6 or 1000)",
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(ONEHOT_DTYPES),
        default="uint8",
        help="uint8: compact, N = zeros (default); float16: Basset's format",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    return parser


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_cli(argv)
    make_demo(
        args.out,
        preset=args.preset,
        seed=args.seed,
        n_seqs=args.n_seqs,
        seq_len=args.seq_len,
        valid=args.valid,
        test=args.test,
        onehot_dtype=args.dtype,
        quiet=args.quiet,
    )
    return 0
