"""basset-train, basset-test, basset-predict: Basset's command lines, Lua spellings accepted.

`basset-train -cuda -job pretrained_params.txt -stagnant_t 10 all_data_ever.h5` works as it did
with basset_train.lua; every option also has a modern spelling (--stagnant-t, --max-epochs, ...).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from basset.cli.common import (
    ArgParser,
    add_device_args,
    add_model_arguments,
    cli_entry,
    device_from_args,
    model_and_data,
    non_negative_int,
    positive_int,
    seed_int,
)
from basset.data.fasta import read_fasta_all
from basset.data.h5read import load_data
from basset.data.onehot import encode_codes
from basset.errors import DataError
from basset.fileio import (
    atomic_path,
    check_distinct,
    check_output_file,
    check_output_folder,
    output_folder,
    write_text_atomic,
)
from basset.params import PADDINGS, builtin_params, read_params
from basset.training.checkpoint import LoadedModel, load_model, read_checkpoint, seed_job
from basset.training.metrics import nan_mean, r2_per_target
from basset.training.predict import predict_proba, split_scores
from basset.training.seam import TrainOptions
from basset.training.trainer import stop_reason, train
from basset.training.validation import validate_checkpoint

log = logging.getLogger(__name__)
DEFAULTS = TrainOptions()  # the flags' defaults are the trainer's


def build_train_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-train",
        description="Train a Basset network on a Basset HDF5 (train and valid splits).",
        allow_abbrev=False,
    )
    parser.add_argument("data", type=Path, help="Basset HDF5 data file")
    add_device_args(parser)
    parser.add_argument(
        "-job", "--job", type=Path, help="params table (default: Basset's small built-in net)"
    )
    parser.add_argument(
        "-stagnant_t",
        "--stagnant-t",
        dest="stagnant_t",
        type=non_negative_int,
        default=DEFAULTS.stagnant_t,
        help="stop after this many epochs without a new best validation AUROC "
        "(default %(default)s)",
    )
    parser.add_argument("-max_epochs", "--max-epochs", dest="max_epochs", type=positive_int,
                        default=DEFAULTS.max_epochs, help="epoch cap (default %(default)s)")
    parser.add_argument(
        "--eval-every", dest="eval_every", type=positive_int, metavar="N",
        help="validate, checkpoint and log every N training sequences (whole batches) instead "
        "of every epoch; -max_epochs and -stagnant_t then count these evaluations",
    )
    parser.add_argument(
        "--valid-subset", dest="valid_subset", type=positive_int, metavar="N",
        help="score every evaluation on N validation sequences (a fixed subset, the same in "
        "every run), then the best model on the whole validation split",
    )
    parser.add_argument(
        "-save",
        "--save",
        default="dnacnn",
        help="prefix of PREFIX_check.pt, PREFIX_best.pt, PREFIX_metrics.tsv (default %(default)s)",
    )
    parser.add_argument("-restart", "--restart", type=Path, help="continue from a PREFIX_check.pt")
    parser.add_argument(
        "-seed",
        "--seed",
        type=Path,
        help="start from this model: its conv layers, and its hidden layers when the job's "
        "hidden_units are the seed's (without -job: all but the output layer)",
    )
    parser.add_argument("-rand", "--rand", type=seed_int, default=DEFAULTS.rand,
                        help="random seed (default %(default)s)")
    parser.add_argument("-rc", "--rc", action="store_true",
                        help="reverse-complement every other epoch; validate on both strands")
    parser.add_argument("-drop_rate", "--drop-rate", dest="drop_rate", action="store_true",
                        help="learning rate x 2/3 when the train loss improves by < 1e-4")
    parser.add_argument("-result", "--result", type=Path,
                        help="write the best mean validation AUROC to this file (with "
                        "--valid-subset: the best model's on the whole split)")
    parser.add_argument(
        "--padding",
        choices=PADDINGS,
        help="paper: unpadded convolutions; same: length-keeping (overrides the job)",
    )
    parser.add_argument(
        "--no-amp", dest="amp", action="store_false", help="fp32 on CUDA (no bf16 autocast)"
    )
    parser.add_argument("--legacy-order", action="store_true",
                        help="Basset's file order instead of a shuffle every epoch")
    parser.add_argument(
        "--freeze-conv", action="store_true", help="with -seed: keep the conv layers fixed"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="warnings only, no progress bars"
    )
    return parser


@cli_entry
def train_main(argv: Sequence[str] | None = None) -> int:
    args = build_train_parser().parse_cli(argv)
    device = device_from_args(args)
    if args.job:
        params = read_params(args.job)
    else:  # Basset's built-in net, or with -seed the seed's
        params = seed_job(args.seed) if args.seed else builtin_params()
    if args.padding:
        params.padding = args.padding
    if args.freeze_conv and not args.seed:
        log.warning("--freeze-conv has no effect without -seed")
    # Outputs are checked before the data are read and the first epoch runs.
    check_output_folder(Path(args.save).parent)
    if args.result:
        check_output_file(args.result)
    _check_train_paths(args)
    options = _train_options(args, device)
    _check_restart_goes_on(options)
    data = load_data(args.data, splits=("train", "valid"))
    result = train(params, data, options=options)
    log.info(
        "best mean valid AUROC %.4f at %s %d (%s); model in %s", result.best_metric,
        "epoch" if args.eval_every is None else "evaluation", result.best_epoch,
        result.stop_reason, result.best_path,
    )
    best = result.best_metric
    if args.valid_subset is not None and result.best_path is not None:
        full = validate_checkpoint(result.best_path, data, device=device, rc=args.rc,
                                   amp=args.amp)
        best = full.metric
        log.info("the best model on the whole validation split (%d sequences): mean valid "
                 "AUROC %.4f", full.rows, best)
    if args.result:
        write_text_atomic(args.result, f"{best}\n")
    return 0


def _train_options(args: argparse.Namespace, device: str) -> TrainOptions:
    return TrainOptions(
        max_epochs=args.max_epochs,
        stagnant_t=args.stagnant_t,
        eval_every=args.eval_every,
        valid_subset=args.valid_subset,
        rand=args.rand,
        rc=args.rc,
        drop_rate=args.drop_rate,
        legacy_order=args.legacy_order,
        device=device,
        amp=args.amp,
        save_prefix=Path(args.save),
        restart=args.restart,
        seed_model=args.seed,
        freeze_conv=args.freeze_conv,
        quiet=args.quiet,
    )


def _check_restart_goes_on(options: TrainOptions) -> None:
    """A restart whose run has already stopped would train nothing: say so, before any file or
    folder is made."""
    if options.restart is None:
        return
    state = read_checkpoint(options.restart).state
    stop = stop_reason(state.epoch + 1, state.best_epoch, options)
    if stop == "max_epochs":
        raise DataError(
            f"-restart {options.restart} has already trained {state.epoch} epochs: -max_epochs "
            f"{options.max_epochs} leaves none to train (give more than {state.epoch})"
        )
    if stop == "stagnant":
        raise DataError(
            f"-restart {options.restart}: its run has already stopped, "
            f"{state.epoch - state.best_epoch} epochs without a new best after epoch "
            f"{state.best_epoch} (-stagnant_t "
            f"{options.stagnant_t}); give a larger -stagnant_t to go on"
        )


def _check_train_paths(args: argparse.Namespace) -> None:
    """No output over an input or another output. A restart from PREFIX_check.pt (or _best.pt)
    with the same -save is the normal use: it is read whole before the first epoch writes."""
    checkpoints = [(f"-save's {name}", f"{args.save}_{name}") for name in ("check.pt", "best.pt")]
    others = [("-save's metrics.tsv", f"{args.save}_metrics.tsv"), ("-result", args.result)]
    inputs = [("the data", args.data), ("-job", args.job), ("-seed", args.seed)]
    check_distinct(inputs, checkpoints + others)
    check_distinct([("-restart", args.restart)], others)


def _check_fit(loaded: LoadedModel, seq_len: int, num_targets: int | None, source: Path) -> None:
    if seq_len != loaded.seq_len:
        raise DataError(
            f"{source}: sequences are {seq_len} bp, the model takes {loaded.seq_len} bp"
        )
    if num_targets is not None and num_targets != len(loaded.target_labels):
        raise DataError(
            f"{source}: {num_targets} targets, the model predicts {len(loaded.target_labels)}"
        )


def build_test_parser() -> ArgParser:
    parser = ArgParser(prog="basset-test", description="Per-target AUROC/AUPRC on the test split.",
                       allow_abbrev=False)
    add_model_arguments(parser, "Basset HDF5 with a test split", ("out_dir", "folder for aucs.txt"),
                        batch_size=256)
    parser.add_argument("-rc", "--rc", action="store_true", help="average both strands")
    return parser


@cli_entry
def test_main(argv: Sequence[str] | None = None) -> int:
    args = build_test_parser().parse_cli(argv)
    device = device_from_args(args)
    check_output_folder(args.out_dir)
    check_distinct(model_and_data(args), [("the output", args.out_dir / name)
                                            for name in ("aucs.txt", "r2.txt")])
    loaded = load_model(args.model, device)
    data = load_data(args.data, splits=("test",))
    test = data.test
    if test is None or len(test) == 0:
        raise DataError(f"{args.data}: no test sequences")
    _check_fit(loaded, test.seqs.shape[1], test.targets.shape[1], args.data)
    labels = loaded.target_labels
    output_folder(args.out_dir)
    if loaded.params.target_type == "binary":
        auroc, auprc = split_scores(loaded.model, test, batch_size=args.batch_size, device=device,
                                    rc=args.rc)
        rows = [f"{i}\t{labels[i]}\t{auroc[i]:.6f}\t{auprc[i]:.6f}" for i in range(len(labels))]
        write_text_atomic(args.out_dir / "aucs.txt", "\n".join(rows) + "\n")
        print(f"mean AUROC {nan_mean(auroc):.4f}  mean AUPRC {nan_mean(auprc):.4f}  "
              f"({int(np.isfinite(auroc).sum())} of {len(labels)} targets)")
    else:
        preds = predict_proba(loaded.model, test.seqs, batch_size=args.batch_size, device=device,
                              rc=args.rc)
        r2 = r2_per_target(test.targets, preds)
        rows = [f"{i}\t{labels[i]}\t{r2[i]:.6f}" for i in range(len(labels))]
        write_text_atomic(args.out_dir / "r2.txt", "\n".join(rows) + "\n")
        print(f"mean R2 {nan_mean(r2):.4f}")
    return 0


def build_predict_parser() -> ArgParser:
    parser = ArgParser(
        prog="basset-predict",
        description="Predict every sequence of a FASTA file (or an HDF5's test split): one row per "
        "sequence, id first, one column per target.",
        allow_abbrev=False,
    )
    add_model_arguments(parser, "FASTA (sequences centre-trimmed/padded to the model's length) or "
                        "Basset HDF5 (its test split)", ("out", "TSV to write"), batch_size=256)
    parser.add_argument("-rc", "--rc", action="store_true", help="average both strands")
    return parser


def _sequences(path: Path, loaded: LoadedModel) -> tuple[list[str], np.ndarray]:
    if path.is_file() and h5py.is_hdf5(path):
        test = load_data(path, splits=("test",)).test
        if test is None or len(test) == 0:
            raise DataError(f"{path}: no test sequences")
        _check_fit(loaded, test.seqs.shape[1], None, path)
        ids = test.headers or [str(i) for i in range(len(test))]
        return ids, test.seqs
    ids, seqs = read_fasta_all(path)
    return ids, encode_codes(seqs, loaded.seq_len)


@cli_entry
def predict_main(argv: Sequence[str] | None = None) -> int:
    args = build_predict_parser().parse_cli(argv)
    device = device_from_args(args)
    check_output_file(args.out)
    check_distinct(model_and_data(args), [("the output", args.out)])
    loaded = load_model(args.model, device)
    ids, codes = _sequences(args.data, loaded)
    preds = predict_proba(
        loaded.model, codes, batch_size=args.batch_size, device=device, rc=args.rc
    )
    with atomic_path(args.out) as tmp, tmp.open("w") as out:
        out.write("\t".join(["id", *loaded.target_labels]) + "\n")
        for name, row in zip(ids, preds, strict=True):
            out.write(name + "\t" + "\t".join(f"{v:.6g}" for v in row) + "\n")
    log.info("wrote %d predictions x %d targets to %s", len(ids), preds.shape[1], args.out)
    return 0
