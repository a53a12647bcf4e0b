"""Errors that end a run before or while it starts, with the exit code each maps to."""

from __future__ import annotations

import os
from pathlib import Path


class ConfigError(Exception):
    """Bad input: a setting, flag or output place a user must fix. Exit status 2, one line.

    The message names the setting (flag and environment variable) and what is accepted.
    """

    exit_code = 2


class SinkUnreachable(ConfigError):
    """A sink did not answer at start (within ``--wait-for-sinks``). Exit status 1."""

    exit_code = 1


def check_writable(folder: Path, setting: str) -> None:
    """Create the folder if needed and prove a file can be written there, or ConfigError
    naming ``setting`` (a file in the way, no permission, a read-only disk)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".synthstream-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{setting}: cannot write to {folder}: {reason}") from None
