"""Exact conversion of wire time (int microseconds since the epoch, UTC) to ``datetime`` for timestamptz."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "ts"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts(us: int) -> datetime:
    # timedelta arithmetic is exact in microseconds (no float on the way, unlike fromtimestamp(us / 1e6)).
    return EPOCH + timedelta(microseconds=us)
