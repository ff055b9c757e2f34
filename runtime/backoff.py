"""Capped, jittered exponential backoff: the one reconnect policy of every ortel client.

"Full jitter" (delay drawn uniformly from [0, min(cap, base * 2**attempt)]) spreads a fleet of gateways that
lost the broker at the same moment, so they do not all come back in the same millisecond.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass
class Backoff:
    base_s: float = 0.2
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 < base_s <= cap_s")

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.attempt, 62))
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)  # half-jitter: never hammer, never wait needlessly long

    def reset(self) -> None:
        self.attempt = 0
