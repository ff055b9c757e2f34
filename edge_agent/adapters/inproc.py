"""In-process adapter: the CLI (or a test) hands the agent an async iterable of device lines."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from edge_agent.adapters import LineItem

__all__ = ["QueueAdapter"]


class QueueAdapter:
    def __init__(self, source: AsyncIterable[LineItem], *, name: str = "inproc") -> None:
        self.name = name
        self._source = source

    async def lines(self) -> AsyncIterator[LineItem]:
        async for line in self._source:
            yield line
