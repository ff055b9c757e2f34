"""Errors of the edge agent.

    AgentError
     ├── ConfigError        settings that cannot work (bad rule, bad pattern, missing key)
     ├── OutboxError        the SQLite outbox cannot be opened or written
     └── PublishRejected    the broker answered a PUBACK reason code >= 0x80 (ACL denial, oversize)
"""

from __future__ import annotations

__all__ = ["AgentError", "ConfigError", "OutboxError", "PublishRejected"]


class AgentError(Exception):
    """Base class of every error the agent raises on purpose."""


class ConfigError(AgentError):
    pass


class OutboxError(AgentError):
    pass


class PublishRejected(AgentError):
    def __init__(self, *, topic: str, reason_code: int, reason: str) -> None:
        super().__init__(f"broker refused {topic!r}: 0x{reason_code:02x} {reason}")
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason
