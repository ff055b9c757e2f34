"""TCP adapter: devices connect to ``host:port`` and send newline-delimited JSON (``wire.device`` lines)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from edge_agent.adapters import LineItem
from runtime import logs

__all__ = ["TcpAdapter"]

log = logs.get("edge_agent.adapters.tcp")
MAX_LINE = 1024 * 1024


class TcpAdapter:
    def __init__(self, *, host: str, port: int, name: str = "tcp", queue_size: int = 10_000) -> None:
        self.name = name
        self.host = host
        self.port = port  # 0 = any free port; the bound port is stored here once listening
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self.listening = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while line := await reader.readline():
                if line.strip():
                    await self._queue.put(line)  # a full queue slows the device down (TCP backpressure)
        except (ValueError, ConnectionError) as exc:  # ValueError: a line longer than MAX_LINE
            log.warning("device connection dropped", peer=str(peer), error=str(exc))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def lines(self) -> AsyncIterator[LineItem]:
        server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_LINE)
        self.port = server.sockets[0].getsockname()[1]
        self.listening.set()
        log.info("listening for devices", host=self.host, port=self.port)
        try:
            while True:
                yield await self._queue.get()
        finally:
            server.close()
            await server.wait_closed()
