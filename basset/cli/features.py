"""basset-features: peaks (one BED per sample) + genome -> features, activity table, FASTA, HDF5."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from basset.cli.common import ArgParser, add_split_arguments, cli_entry, split_options
from basset.data.features import build_features


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-features",
        description="Peaks (one BED/narrowPeak per sample, plain or gzipped) + genome FASTA -> "
        "Basset's merged features (PREFIX.bed), activity table (PREFIX_act.txt), sequences "
        "(PREFIX.fa) and HDF5 (PREFIX.h5).",
    )
    parser.add_argument("samples", type=Path, help="sample table: 'label bed_path' per line")
    parser.add_argument(
        "genome", type=Path, help="genome FASTA, plain or bgzipped (indexed if needed)"
    )
    parser.add_argument("-o", "--out", default="features", metavar="PREFIX",
                        help="output prefix (default: features)")
    parser.add_argument(
        "-s", "--size", type=int, default=600, help="feature size in bp (default 600)"
    )
    parser.add_argument("-m", "--merge-overlap", type=int, default=200,
                        help="merge features overlapping by at least this many bp (default 200)")
    parser.add_argument("-c", "--chrom-sizes", type=Path, default=None,
                        help="chromosome lengths table, checked against the genome's")
    parser.add_argument("-y", "--no-chry", action="store_true", help="ignore chrY peaks")
    parser.add_argument(
        "-i",
        "--primary-only",
        action="store_true",
        help="ignore every chromosome but chr<number> and chrX (_random, chrUn, chrM, ...)",
    )
    parser.add_argument("--summit", action="store_true",
                        help="centre on narrowPeak's summit (column 10) rather than the midpoint")
    parser.add_argument("--no-h5", action="store_true", help="stop after PREFIX.fa")
    add_split_arguments(parser, "--seed")  # -s is the feature size, as in Basset
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    return parser


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_cli(argv)
    summary = build_features(
        args.samples,
        args.genome,
        args.out,
        size=args.size,
        overlap=args.merge_overlap,
        sizes_file=args.chrom_sizes,
        ignore_y=args.no_chry,
        primary_only=args.primary_only,
        summit=args.summit,
        h5=not args.no_h5,
        **split_options(args),
        quiet=args.quiet,
    )
    if not args.quiet:
        print(summary)
    return 0
