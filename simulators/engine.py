"""The pacing shell: timed device lines from the pure generator, released on a virtual clock.

``paced`` turns the plan's lines into an async iterator that follows the wall clock at ``speed`` (or as fast
as possible with ``speed=None``). Virtual time starts at ``origin_us``; ``anchor`` places the origin in the past
so that no line is ever stamped later than the wall clock (ingest rejects the future) and the last line is
"now" when the run ends. Lines reach per-room ``LineSink`` s (an edge agent's queue, a TCP socket).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Protocol

from simulators.generate import AnyLine, DeviceFaults, Timed, plan_lines
from simulators.plan import Plan

__all__ = ["LineSink", "QueueSink", "anchor", "drive", "live_lines", "paced", "queue_lines"]

YIELD_EVERY = 500  # lines between cooperative yields when running flat out


MAX_LEAD_US = 86_400 * 1_000_000  # virtual time starts at most a day in the past (ingest keeps 30 days)


def anchor(now_us: int, span_us: int, speed: float | None, *, max_lead_us: int = MAX_LEAD_US) -> int:
    """Virtual origin for a plan of ``span_us`` replayed at ``speed`` starting now.

    Virtual time runs ``speed`` times faster than the wall clock from ``origin``, so it catches up with the
    wall clock exactly when the plan ends: origin = now - span * (1 - 1/speed). Flat out: the plan ends now.
    A long plan starts at most ``max_lead_us`` in the past; once virtual time has caught up with the wall
    clock, ``paced(wall_us=...)`` holds it there (real time) rather than stamping the future.
    """
    if speed is not None and speed <= 0:
        raise ValueError("speed must be positive")
    lead = span_us if speed is None else int(span_us * max(0.0, 1.0 - 1.0 / speed))
    return now_us - min(lead, max_lead_us)


async def paced(
    lines: Iterable[Timed],
    *,
    origin_us: int,
    speed: float | None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    wall_us: int | None = None,
) -> AsyncIterator[Timed]:
    """Yield each line when the virtual clock reaches its instant, and (given ``wall_us``, the epoch time now)
    never before the wall clock reaches it: nothing is stamped in the future."""
    start = clock()
    for n, t in enumerate(lines, start=1):
        due = start + (t.at_us - origin_us) / 1e6 / speed if speed is not None else start
        if wall_us is not None:
            due = max(due, start + (t.at_us - wall_us) / 1e6)
        if due > start:
            delay = due - clock()
            if delay > 0.002:
                await sleep(delay)  # pacing to the virtual clock, not synchronisation
        if n % YIELD_EVERY == 0:
            await sleep(0)
        yield t


def live_lines(
    plan: Plan,
    *,
    speed: float | None,
    now_us: int,
    faults: DeviceFaults | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncIterator[Timed]:
    """The plan's lines on a virtual clock anchored so that the run ends at wall time ``now + span/speed``."""
    origin = anchor(now_us, plan.span_us, speed)
    return paced(plan_lines(plan, origin_us=origin, faults=faults), origin_us=origin, speed=speed, clock=clock,
                 sleep=sleep, wall_us=now_us)


class LineSink(Protocol):
    async def send(self, line: AnyLine) -> None: ...

    async def aclose(self) -> None: ...


class QueueSink:
    """Hands lines to an in-process consumer (an edge agent's queue adapter); ``None`` marks the end."""

    def __init__(self, queue: asyncio.Queue[AnyLine | None]) -> None:
        self.queue = queue

    async def send(self, line: AnyLine) -> None:
        await self.queue.put(line)

    async def aclose(self) -> None:
        await self.queue.put(None)


async def drive(lines: AsyncIterator[Timed], sinks: Mapping[int, LineSink],
                progress: Callable[[Timed], None] | None = None) -> int:
    """Route every line to its room's sink; returns the number sent. Sinks are closed by the caller."""
    sent = 0
    async for t in lines:
        sink = sinks.get(t.room)
        if sink is None:
            continue
        await sink.send(t.line)
        sent += 1
        if progress is not None:
            progress(t)
    return sent


async def queue_lines(queue: asyncio.Queue[AnyLine | None]) -> AsyncIterator[AnyLine]:
    """The consumer side of a ``QueueSink``: lines until the end mark."""
    while (line := await queue.get()) is not None:
        yield line
