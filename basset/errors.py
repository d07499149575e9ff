"""Errors a user can cause. The CLIs turn them into one line on stderr and exit code 2."""

from __future__ import annotations


class BassetError(Exception):
    """A problem with the user's input (file, key, flag, URL): reported without a traceback."""


class ParamsError(BassetError):
    """A params table that cannot be read."""


class DataError(BassetError):
    """A data file (FASTA, activity table, HDF5) that cannot be used."""


class ArchitectureError(BassetError):
    """A network that cannot be built (for example, the sequence shrinks to nothing)."""
