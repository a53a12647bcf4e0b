"""Errors that end a run before or while it starts, with the exit code each maps to."""

from __future__ import annotations


class ConfigError(Exception):
    """Bad input: a setting, flag or output place a user must fix. Exit status 2, one line.

    The message names the setting (flag and environment variable) and what is accepted.
    """

    exit_code = 2
