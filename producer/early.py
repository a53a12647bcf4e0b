"""Stops that come while the process starts: SIGINT and SIGTERM are caught before anything
slow is imported (numpy, pydantic and the sinks take a third of a second), so a stop sent
then still ends the run with its summary and status.

A signal that comes early is kept; the run replays it once its own handlers are in place
(``producer.root``). A command that is not a run lets the signal do what it would have done.
"""

from __future__ import annotations

import signal
from types import FrameType

_caught: list[signal.Signals] = []


def _keep(signum: int, frame: FrameType | None) -> None:
    _caught.append(signal.Signals(signum))


def catch() -> None:
    """Keep SIGINT and SIGTERM from now on, until the run's handlers (or ``release``)."""
    signal.signal(signal.SIGINT, _keep)
    signal.signal(signal.SIGTERM, _keep)


def caught() -> list[str]:
    """The stops that came before the run could take them, as ``"signal NAME"``."""
    return [f"signal {sig.name}" for sig in _caught]


def release() -> None:
    """Give the signals back their defaults, and act on one that came meanwhile."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _caught:
        signal.raise_signal(_caught[0])
