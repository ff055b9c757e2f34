"""Privacy at the edge (pure): keyed pseudonyms for case ids and scrubbing of free text.

A hospital case number must never leave the gateway, yet the back end needs to group one case's events. A keyed
HMAC-SHA256 (secret per gateway or site) gives a stable pseudonym that cannot be reversed or recomputed
without the key; truncated to 24 hex characters (96 bits) it still cannot collide in practice and matches the
wire contract's ``CaseId`` pattern.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

__all__ = ["REDACTED", "Pseudonymiser", "Scrubber"]

REDACTED = "[redacted]"
# C0 controls (but tab and newlines) and DEL: a NUL cannot be stored in PostgreSQL text, and none belongs in a
# label a device reports; they are removed before anything is published.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Pseudonymiser:
    def __init__(self, *, key: bytes, prefix: str = "c", length: int = 24) -> None:
        if len(key) < 16:
            raise ValueError("the pseudonym key needs at least 16 bytes")
        if not 8 <= length <= 64 - len(prefix):
            raise ValueError("pseudonym length out of range")
        self._key = key
        self._prefix = prefix
        self._length = length

    def __call__(self, raw: str) -> str:
        digest = hmac.new(self._key, raw.strip().encode(), hashlib.sha256).hexdigest()
        return self._prefix + digest[: self._length]


class Scrubber:
    """Replace every match of the configured identifier patterns (MRN, national id, names) in text, and drop
    control characters."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self._patterns = tuple(re.compile(p) for p in patterns)

    def __call__(self, text: str) -> str:
        text = _CONTROL.sub("", text)
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def leaks_in(self, value: object) -> list[str]:
        """The matches in every string of ``value`` (a message's JSON-ready dump: dicts, lists, keys included).
        Numbers are not text: a site pattern for bare digits must not flag a reading or a timestamp."""
        if isinstance(value, str):
            return self.leaks(value)
        if isinstance(value, dict):
            return [m for k, v in value.items() for m in (*self.leaks_in(k), *self.leaks_in(v))]
        if isinstance(value, list | tuple):
            return [m for v in value for m in self.leaks_in(v)]
        return []

    def leaks(self, text: str) -> list[str]:
        """The matches still present in ``text`` (used by tests and by the agent's last check before it stores a
        record or publishes a birth)."""
        return [m.group(0) for p in self._patterns for m in p.finditer(text)]
