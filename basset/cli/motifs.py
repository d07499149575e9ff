"""basset-motifs: first-layer filters -> PWMs, MEME file, JASPAR matches, logos."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from basset.cli.common import (
    ArgParser,
    add_model_arguments,
    cli_entry,
    device_from_args,
    model_and_data,
    positive_int,
)
from basset.data.h5read import load_data
from basset.errors import DataError
from basset.fileio import check_distinct, check_output_folder, output_folder, write_text_atomic
from basset.interpret.jaspar import jaspar_vertebrates
from basset.interpret.motifs import (
    THRESHOLD,
    filter_motifs,
    logos_html,
    match_filters,
    meme_text,
    table_text,
)
from basset.training.checkpoint import load_model

log = logging.getLogger(__name__)
OUTPUTS = ("filters_meme.txt", "table.tsv", "logos.html")


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a fraction of the maximum in (0, 1)")
    return value



def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-motifs",
        description="First-layer filters -> PWMs, MEME file, JASPAR matches (TOMTOM), logos.",
    )
    add_model_arguments(parser, "Basset HDF5 whose sequences activate the filters",
                        ("out_dir", "folder for filters_meme.txt, table.tsv, logos.html"),
                        batch_size=256)
    parser.add_argument(
        "--split",
        choices=("test", "valid", "train"),
        default="test",
        help="sequences to use (default test)",
    )
    parser.add_argument(
        "--max-seqs",
        type=positive_int,
        default=None,
        metavar="N",
        help="use the first N sequences only",
    )
    parser.add_argument(
        "--threshold",
        type=_threshold,
        default=THRESHOLD,
        help="site = activation above this fraction of the filter's maximum (default 0.5)",
    )
    return parser


@cli_entry
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_cli(argv)
    out = check_output_folder(args.out_dir)
    check_distinct(model_and_data(args), [("the output", out / name) for name in OUTPUTS])
    loaded = load_model(args.model, device=device_from_args(args))
    split = getattr(load_data(args.data, splits=(args.split,)), args.split)
    if split is None or len(split) == 0:
        raise DataError(f"{args.data}: the {args.split} split has no sequences")
    codes = split.seqs[: args.max_seqs]
    log.info("first-layer activations of %d %s sequences", len(codes), args.split)
    motifs = filter_motifs(
        loaded.model, codes, threshold=args.threshold, batch_size=args.batch_size
    )
    log.info(
        "comparing %d filters with JASPAR CORE vertebrates", sum(m.n_sites > 0 for m in motifs)
    )
    matches = match_filters(motifs, jaspar_vertebrates())
    output_folder(out)
    write_text_atomic(out / "filters_meme.txt", meme_text(motifs))
    write_text_atomic(out / "table.tsv", table_text(motifs, matches))
    write_text_atomic(
        out / "logos.html", logos_html(motifs, matches, f"Filters of {args.model.name}")
    )
    significant = sorted((m for m in matches.values() if m.q_value < 0.05), key=lambda m: m.p_value)
    if not args.quiet:
        print(
            f"{len(motifs)} filters, {len(matches)} with sites, {len(significant)} matched "
            f"(q < 0.05); wrote {out}/table.tsv, filters_meme.txt, logos.html"
        )
    return 0
