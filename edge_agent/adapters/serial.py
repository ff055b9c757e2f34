"""Serial adapter: a device on a serial port speaking NDJSON lines. pyserial is an optional extra
(``pip install ortel[serial]``), imported only when this adapter runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from edge_agent.adapters import LineItem
from edge_agent.errors import ConfigError

__all__ = ["SerialAdapter"]


class SerialAdapter:
    def __init__(self, *, port: str, baud: int = 115200, name: str = "serial") -> None:
        self.name = name
        self._port = port  # a device path or a pyserial URL (e.g. "loop://", "socket://host:port")
        self._baud = baud

    def _open(self) -> Any:
        try:
            import serial
        except ImportError as exc:
            raise ConfigError("the serial adapter needs pyserial: pip install 'ortel[serial]'") from exc
        return serial.serial_for_url(self._port, baudrate=self._baud, timeout=0.5)

    async def lines(self) -> AsyncIterator[LineItem]:
        port = await asyncio.to_thread(self._open)
        partial = b""
        try:
            while True:
                chunk: bytes = await asyncio.to_thread(port.readline)
                partial += chunk
                if not partial.endswith(b"\n"):
                    continue  # read timed out mid-line: keep what we have
                line, partial = partial, b""
                if line.strip():
                    yield line
        finally:
            port.close()
