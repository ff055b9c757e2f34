"""NDJSON over TCP to an edge agent's TCP adapter: one connection per room, like a device concentrator."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Self
from urllib.parse import urlparse

from runtime.backoff import Backoff
from simulators.generate import AnyLine
from wire.device import encode_line

__all__ = ["TcpSink", "parse_tcp_url"]


def parse_tcp_url(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme != "tcp" or not parsed.hostname or not parsed.port:
        raise ValueError(f"expected tcp://HOST:PORT, got {url!r}")
    return parsed.hostname, parsed.port


class TcpSink:
    """``async with TcpSink(host, port) as sink: await sink.send(line)``; connects with capped backoff."""

    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 30.0) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self.sent = 0

    async def __aenter__(self) -> Self:
        deadline = time.monotonic() + self.connect_timeout_s
        backoff = Backoff(base_s=0.1, cap_s=2.0)
        while True:
            try:
                _, self._writer = await asyncio.open_connection(self.host, self.port)
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(backoff.next_delay())  # reconnect backoff

    async def send(self, line: AnyLine) -> None:
        assert self._writer is not None, "use TcpSink as an async context manager"
        self._writer.write(encode_line(line))
        self.sent += 1
        if self.sent % 200 == 0:
            await self._writer.drain()

    async def aclose(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            except OSError:
                pass

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
