"""When to commit: a batch closes at ``max_messages`` messages, ``max_samples`` samples or ``max_age_s``
seconds after its first message, whichever comes first. Pure: the clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(
        self, *, max_messages: int, max_samples: int, max_age_s: float, clock: Callable[[], float]
    ) -> None:
        if max_messages < 1 or max_samples < 1 or max_age_s <= 0:
            raise ValueError("batch limits must be positive")
        self._max_messages = max_messages
        self._max_samples = max_samples
        self._max_age_s = max_age_s
        self._clock = clock
        self._items: list[T] = []
        self._samples = 0
        self._opened_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T, samples: int = 0) -> None:
        if self._opened_at is None:
            self._opened_at = self._clock()
        self._items.append(item)
        self._samples += samples

    def due(self) -> bool:
        """True when the open batch must be committed now."""
        if not self._items:
            return False
        return (
            len(self._items) >= self._max_messages
            or self._samples >= self._max_samples
            or self.wait_s() == 0.0
        )

    def wait_s(self) -> float | None:
        """Seconds until the open batch becomes due by age; None when there is no open batch."""
        if self._opened_at is None:
            return None
        return max(0.0, self._opened_at + self._max_age_s - self._clock())

    def take(self) -> list[T]:
        items, self._items = self._items, []
        self._samples = 0
        self._opened_at = None
        return items
