"""Shared plumbing of the console scripts: one-line errors with exit code 2, logging set-up."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from basset.errors import BassetError
from basset.fileio import describe_os_error, is_user_os_error

EXIT_USAGE = 2

F = TypeVar("F", bound=Callable[..., int | None])


class ArgParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (usage stays available through --help)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


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


def cli_entry(main: F) -> F:
    """Wrap a console-script main: user errors become one stderr line and exit code 2.

    User errors are BassetErrors and the OSErrors only a user's environment causes (disk full,
    read-only, no permission, a file in the way: fileio.USER_ERRNOS); any other exception is
    our bug and keeps its traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            code = main(*args, **kwargs)
        except BassetError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as err:
            if not is_user_os_error(err):
                raise
            print(f"error: {describe_os_error(err)}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        return 0 if code is None else code

    return wrapper  # type: ignore[return-value]


def setup_logging(quiet: bool = False, verbose: bool = False) -> None:
    """Log to stderr: INFO by default, WARNING with -q, DEBUG with -v."""
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
