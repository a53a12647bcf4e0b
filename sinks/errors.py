"""What a sink's ``send`` may raise, and what the engine does with it.

    SinkError
    ├── RetryableError     the whole batch may succeed if sent again (timeout, 503, outage)
    ├── PartialFailure     some records were accepted; resend only ``failed`` (Kinesis
    │                      entries with an ErrorCode, HTTP 429/5xx for some requests);
    │                      ``rejected`` ones failed for good (a 4xx for one request)
    ├── FatalError         sending again cannot help (401, 400, a record too large):
    │                      the records are counted as failed with ``reason``
    ├── ReaderGone         the consumer closed the destination on purpose (``| head``):
    │                      the run stops generating and ends quietly with status 0
    └── Interrupted        the send was cancelled (the shutdown deadline) part way:
                           ``acknowledged`` positions count as delivered, the rest not

Any other exception from a sink is treated as fatal (and logged with its type), so that a bug
can never turn into an endless retry loop.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class SinkError(Exception):
    """Base of the errors a sink raises; ``reason`` is a short label for metrics."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


class RetryableError(SinkError):
    """Sending the same batch again may succeed.

    ``retry_after_s`` is the server's own hint (HTTP ``Retry-After``): the engine waits at
    least that long.
    """

    def __init__(
        self, message: str, reason: str = "error", retry_after_s: float | None = None,
        unknown_outcome: bool = False,
    ):  # fmt: skip
        super().__init__(message, reason)
        self.retry_after_s = retry_after_s
        # Sent, but no answer came (a read timeout): the destination may have it already,
        # so sending again may deliver it twice (counted as redelivered).
        self.unknown_outcome = unknown_outcome


class PartialFailure(RetryableError):
    """Some records were acknowledged; ``failed`` are the batch positions to resend.

    ``rejected`` maps a reason (``http_422``) to positions that failed for good: they are
    counted as failed and not sent again. Every other position was acknowledged.
    """

    def __init__(
        self,
        message: str,
        failed: npt.NDArray[np.int64],
        reason: str = "partial",
        retry_after_s: float | None = None,
        rejected: dict[str, npt.NDArray[np.int64]] | None = None,
    ) -> None:
        super().__init__(message, reason, retry_after_s)
        self.failed = failed
        self.rejected = rejected or {}


class FatalError(SinkError):
    """Sending again cannot help; the batch's records are counted as failed."""


class ReaderGone(SinkError):
    """The reader went away (a closed pipe): it chose to stop, so the run stops too."""


class Interrupted(SinkError):
    """Raised by a send that was cancelled part way, instead of the bare cancellation: the
    batch positions the destination had acknowledged by then. The engine counts them as
    delivered and lets the cancellation go on."""

    def __init__(self, acknowledged: npt.NDArray[np.int64]) -> None:
        super().__init__(f"interrupted after {len(acknowledged)} acknowledged", "interrupted")
        self.acknowledged = acknowledged
