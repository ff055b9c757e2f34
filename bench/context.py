"""What a figure gets: the private servers, the run count, the size preset and a progress callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.harness import BenchStack

__all__ = ["BenchContext"]


def _noop(*_: object) -> None:
    return None


@dataclass
class BenchContext:
    stack: BenchStack
    runs: int
    quick: bool
    start_us: int  # device time of the first synthetic sample (recent: ingest checks timestamps)
    status: Callable[[str], None] = _noop
    advance: Callable[[], None] = _noop
    notes: list[str] = field(default_factory=list)
    scale: float = 1.0  # tests shrink every size with this

    def size(self, *, quick: int, full: int, minimum: int = 1) -> int:
        return max(minimum, int((quick if self.quick else full) * self.scale))

    def seconds(self, *, quick: float, full: float) -> float:
        return (quick if self.quick else full) * max(self.scale, 0.05)
