"""Errors a user of the service can cause; like the trainer's, the CLI prints them as one line
on stderr and exits 2 (they are BassetErrors)."""

from __future__ import annotations

from basset import BassetError


class ConfigError(BassetError):
    """A study file, or a flag overriding it, that cannot be used."""


class StorageError(BassetError):
    """A study storage that cannot be reached, opened or used (server down, wrong password,
    not a study database, no such study in it)."""


class ResultsError(BassetError):
    """A result (export, report) that cannot be produced as asked."""
