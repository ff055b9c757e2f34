"""Device adapters: each yields parsed device lines (or raw NDJSON lines for the service to parse).

    class Adapter(Protocol):
        name: str
        def lines(self) -> AsyncIterator[DeviceLine | bytes]

- ``inproc.QueueAdapter``: an async iterable of ``wire.device`` lines handed over in process (simulators).
- ``tcp.TcpAdapter``: devices connect to a local TCP port and send newline-delimited JSON.
- ``mqtt_bus.MqttBusAdapter``: devices publish NDJSON lines on a local MQTT bus.
- ``serial.SerialAdapter``: a serial port speaking the same lines (needs the ``serial`` extra, imported lazily).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from wire.device import Bye, DeviceEvent, Hello, Procedure, Sample

__all__ = ["Adapter", "LineItem"]

LineItem = Hello | Sample | DeviceEvent | Procedure | Bye | bytes


class Adapter(Protocol):
    name: str

    def lines(self) -> AsyncIterator[LineItem]: ...
