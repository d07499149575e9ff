"""Shared plumbing of the console scripts: one-line errors with exit code 2, logging set-up."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

from basset.data.h5write import ONEHOT_DTYPES
from basset.device import resolve_device
from basset.errors import BassetError
from basset.fileio import describe_os_error, is_user_os_error

EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., int | None])


class ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (usage stays available through --help)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)

    def parse_cli(self, argv: Sequence[str] | None) -> argparse.Namespace:
        """The arguments, with logging set from their -q (and -v where the script has it)."""
        args = self.parse_args(argv)
        setup_logging(quiet=args.quiet, verbose=getattr(args, "verbose", False))
        return args


def _whole(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be {'> 0' if low else '>= 0'}, not {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number > 0."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _whole(text, 0)


MAX_SEED = 2**32 - 1  # numpy's and Optuna's seeds are 32-bit


def seed_int(text: str) -> int:
    """argparse type of a random seed: a whole number in [0, 2**32 - 1]."""
    value = _whole(text, 0)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SEED} (2**32 - 1), not {value}")
    return value


def cli_entry(main: F) -> F:
    """Wrap a console-script main: user errors become one stderr line and exit code 2.

    User errors are BassetErrors and the OSErrors only a user's environment causes (disk full,
    read-only, no permission, a file in the way: fileio.USER_ERRNOS); any other exception is
    our bug and keeps its traceback. A reader that goes away (`basset-test ... | head -c 10`)
    ends the output quietly: what is printed after is dropped, and the work goes on."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        # What is alive when the script exits dies with the process: kept out of the
        # interpreter's last collection, which takes 0.5-1 s once torch is loaded (one
        # registration however often main runs in one process)
        atexit.unregister(gc.freeze)
        atexit.register(gc.freeze)
        with _closed_pipes_dropped():
            try:
                code = main(*args, **kwargs)
            except BassetError as err:
                print(f"error: {err}", file=sys.stderr)
                return EXIT_USAGE
            except BrokenPipeError:  # a pipe the script wrote into itself (/dev/stdout)
                return 0
            except OSError as err:
                if not is_user_os_error(err):
                    raise
                print(f"error: {describe_os_error(err)}", file=sys.stderr)
                return EXIT_USAGE
            except MemoryError:  # what a load's own estimate missed
                print("error: out of memory: the input needs more memory than this machine has "
                      "available", file=sys.stderr)
                return EXIT_USAGE
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr)
                return 130
            return 0 if code is None else code

    return wrapper  # type: ignore[return-value]


class _DropAfterEPIPE:
    """A text stream that, once the reader of its pipe has gone (EPIPE), drops what is written
    instead of raising: the descriptor is pointed at /dev/null, so the interpreter's last flush
    does not fail either."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def _drop(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):  # no descriptor (tests)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)
        self._stream = open(os.devnull, "w")  # lives as long as the process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _closed_pipes_dropped() -> Iterator[None]:
    """stdout and stderr guarded by _DropAfterEPIPE while a script runs."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _DropAfterEPIPE(sys.stdout)
    sys.stderr = _DropAfterEPIPE(sys.stderr)
    try:
        yield
    finally:
        for guard in (sys.stdout, sys.stderr):
            guard.flush()
        sys.stdout, sys.stderr = saved


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Log to stderr: INFO by default, WARNING with -q, DEBUG with -v."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)


def split_size(text: str) -> float:
    """argparse type of -v/-t: a fraction in [0, 1) or a whole count of sequences."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0 or (value >= 1 and value != int(value)):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a fraction in [0, 1) or a whole count of sequences"
        )
    return value


def add_split_arguments(parser: argparse.ArgumentParser, *seed_flags: str) -> None:
    """-v/--valid, -t/--test, the shuffling seed (under `seed_flags`) and --dtype of the HDF5:
    basset-preprocess's, shared by basset-features."""
    parser.add_argument(
        "-v",
        "--valid",
        type=split_size,
        default=0.1,
        help="validation size: fraction (<1) or count (default 0.1)",
    )
    parser.add_argument(
        "-t",
        "--test",
        type=split_size,
        default=0.1,
        help="test size: fraction (<1) or count (default 0.1)",
    )
    parser.add_argument(
        *seed_flags, dest="seed", type=seed_int, default=1, help="shuffling seed (default 1)"
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(ONEHOT_DTYPES),
        default="float16",
        help="float16: Basset-compatible, N = 0.25 (default); uint8: compact, N = zeros",
    )


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """The scripts' device flags: --device, and Basset's -cuda (-cudnn) for the GPU."""
    parser.add_argument("-cuda", "--cuda", "-cudnn", action="store_true",
                        help="run on the GPU (same as --device cuda)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default cpu)")


def device_from_args(args: argparse.Namespace) -> str:
    """The device the flags name, checked now: a missing GPU is a one-line error before any work."""
    device: str = args.device or ("cuda" if args.cuda else "cpu")
    resolve_device(device)
    return device


def add_model_arguments(
    parser: argparse.ArgumentParser, data_help: str, out: tuple[str, str], *, batch_size: int
) -> None:
    """What every script that applies a trained model takes: the model, its input (`data_help`),
    its output (`out`: name and help), the device flags, --batch-size and -q."""
    parser.add_argument("model", type=Path, help="a trained model (PREFIX_best.pt)")
    parser.add_argument("data", type=Path, help=data_help)
    parser.add_argument(out[0], type=Path, help=out[1])
    add_device_args(parser)
    parser.add_argument("--batch-size", type=positive_int, default=batch_size)
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")


def model_and_data(args: argparse.Namespace) -> list[tuple[str, Path]]:
    """The inputs of add_model_arguments' scripts, named for check_distinct."""
    return [("the model", args.model), ("the input", args.data)]


def split_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the HDF5 writing pipelines from add_split_arguments' flags."""
    return {"valid": args.valid, "test": args.test, "seed": args.seed, "onehot_dtype": args.dtype}
