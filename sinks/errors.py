"""What a sink's ``send`` may raise, and what the engine does with it.

    SinkError
    ├── RetryableError     the whole batch may succeed if sent again (timeout, 503, outage)
    ├── PartialFailure     some records were accepted; resend only ``failed`` (Kinesis
    │                      entries with an ErrorCode, HTTP 429/5xx in batch mode)
    └── FatalError         sending again cannot help (401, 400, a record too large):
                           the records are counted as failed with ``reason``

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

    def __init__(self, message: str, reason: str = "error", retry_after_s: float | None = None):
        super().__init__(message, reason)
        self.retry_after_s = retry_after_s


class PartialFailure(RetryableError):
    """Some records were acknowledged; ``failed`` are the batch positions to resend."""

    def __init__(
        self,
        message: str,
        failed: npt.NDArray[np.int64],
        reason: str = "partial",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, reason, retry_after_s)
        self.failed = failed


class FatalError(SinkError):
    """Sending again cannot help; the batch's records are counted as failed."""
