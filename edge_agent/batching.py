"""Per-device batching decisions (pure): when a batch of samples is sealed.

A batch is sealed when it holds ``max_rows`` readings, when its first reading has waited ``max_age_us`` on the
gateway clock, when the device clock jumped (the jump starts a new batch that carries ``clock_jump=True``, so
a discontinuity never hides inside a batch), or when the agent drains on shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wire.models import MAX_SAMPLES_PER_BATCH

__all__ = ["Batcher", "SealedBatch"]


@dataclass(frozen=True, slots=True)
class SealedBatch:
    device_id: str
    ts_us: tuple[int, ...]
    metrics: dict[str, tuple[float | None, ...]]
    clock_jump: bool
    sealed_us: int  # gateway time

    @property
    def rows(self) -> int:
        return len(self.ts_us)


@dataclass
class _Open:
    opened_us: int
    clock_jump: bool
    ts_us: list[int] = field(default_factory=list)
    metrics: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, ts_us: int, values: dict[str, float | None]) -> None:
        n = len(self.ts_us)
        for name in values.keys() - self.metrics.keys():
            self.metrics[name] = [None] * n  # a metric that appears mid-batch: earlier rows did not measure it
        for name, column in self.metrics.items():
            column.append(values.get(name))
        self.ts_us.append(ts_us)


class Batcher:
    def __init__(self, *, max_rows: int, max_age_us: int) -> None:
        if not 1 <= max_rows <= MAX_SAMPLES_PER_BATCH:
            raise ValueError(f"max_rows must be within 1..{MAX_SAMPLES_PER_BATCH}")
        self._max_rows = max_rows
        self._max_age_us = max_age_us
        self._open: dict[str, _Open] = {}

    def add(
        self, device_id: str, ts_us: int, values: dict[str, float | None], *, now_us: int, clock_jump: bool = False
    ) -> list[SealedBatch]:
        """Add one reading; return the batches this sealed (before or because of it)."""
        sealed: list[SealedBatch] = []
        current = self._open.get(device_id)
        if current is not None and clock_jump:
            sealed.append(self._seal(device_id, now_us))
            current = None
        if current is None:
            current = self._open[device_id] = _Open(opened_us=now_us, clock_jump=clock_jump)
        current.add(ts_us, values)
        if len(current.ts_us) >= self._max_rows:
            sealed.append(self._seal(device_id, now_us))
        return sealed

    def due(self, now_us: int) -> list[SealedBatch]:
        late = [d for d, b in self._open.items() if now_us - b.opened_us >= self._max_age_us]
        return [self._seal(d, now_us) for d in late]

    def next_due_us(self) -> int | None:
        return min((b.opened_us + self._max_age_us for b in self._open.values()), default=None)

    def drain(self, now_us: int) -> list[SealedBatch]:
        return [self._seal(d, now_us) for d in list(self._open)]

    def drain_device(self, device_id: str, now_us: int) -> list[SealedBatch]:
        return [self._seal(device_id, now_us)] if device_id in self._open else []

    def pending_rows(self) -> int:
        return sum(len(b.ts_us) for b in self._open.values())

    def _seal(self, device_id: str, now_us: int) -> SealedBatch:
        batch = self._open.pop(device_id)
        return SealedBatch(
            device_id=device_id,
            ts_us=tuple(batch.ts_us),
            metrics={k: tuple(v) for k, v in batch.metrics.items()},
            clock_jump=batch.clock_jump,
            sealed_us=now_us,
        )
