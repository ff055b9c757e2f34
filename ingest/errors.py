"""Errors of the ingest service.

    IngestError
     ├── StoreUnavailable   the database cannot be written right now (connection lost, restart, deadlock):
     │                      nothing was committed, nothing is acked, the batch is retried
     └── BrokerRefused      the broker refused a subscription or a watermark (reason code >= 0x80)

Bad input is never an exception that escapes: it becomes a ``DeadLetter`` (see ``ingest.classify``).
"""

from __future__ import annotations

__all__ = ["BrokerRefused", "IngestError", "StoreUnavailable"]


class IngestError(Exception):
    """Base class of the errors ingest raises."""


class StoreUnavailable(IngestError):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"database unavailable: {type(cause).__name__}: {str(cause).strip()[:300]}")
        self.cause = cause


class BrokerRefused(IngestError):
    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"broker refused {what}: {reason}")
        self.what = what
        self.reason = reason
