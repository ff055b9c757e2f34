"""Errors raised by the wire contract.

    WireError
     ├── TopicError      a topic that is not part of ortel/v1
     └── DecodeError     a payload that cannot become a message (carries topic and a reason code)

Every reason is one of ``REASONS`` so that dead letters can be grouped and counted.
"""

from __future__ import annotations

__all__ = ["REASONS", "DecodeError", "TopicError", "WireError"]

REASONS = frozenset(
    {
        "bad_topic",  # topic outside the scheme, or an id that is not allowed
        "oversize",  # payload larger than the configured limit
        "malformed_json",  # not JSON, truncated, not an object, NaN/Infinity literals
        "unsupported_version",  # missing or unknown schema version `v`
        "invalid",  # schema validation failed (types, missing fields, NaN, lengths)
        "topic_mismatch",  # payload names another gateway or device than its topic
    }
)


class WireError(Exception):
    """Base class of every error the contract raises."""


class TopicError(WireError):
    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"{reason}: {topic!r}")
        self.topic = topic
        self.reason = reason


class DecodeError(WireError):
    """A payload could not be decoded; ``reason`` is a member of ``REASONS``."""

    def __init__(self, *, topic: str, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown decode reason {reason!r}")
        super().__init__(f"{reason}: {detail} (topic {topic!r})")
        self.topic = topic
        self.reason = reason
        self.detail = detail
