"""Local MQTT bus adapter: devices publish NDJSON lines (one or more per message) on a local broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiomqtt

from edge_agent.adapters import LineItem
from runtime import logs
from runtime.backoff import Backoff

__all__ = ["MqttBusAdapter"]

log = logs.get("edge_agent.adapters.mqtt_bus")


class MqttBusAdapter:
    def __init__(self, *, host: str, port: int, topic: str, username: str | None = None,
                 password: str | None = None, backoff: Backoff | None = None, name: str = "mqtt-bus") -> None:
        self.name = name
        self._host, self._port, self._topic = host, port, topic
        self._username, self._password = username, password
        self._backoff = backoff or Backoff(base_s=0.2, cap_s=10.0)

    async def lines(self) -> AsyncIterator[LineItem]:
        while True:
            try:
                async with aiomqtt.Client(self._host, self._port, username=self._username,
                                          password=self._password, protocol=aiomqtt.ProtocolVersion.V5) as client:
                    await client.subscribe(self._topic, qos=1)
                    self._backoff.reset()
                    async for message in client.messages:
                        payload = message.payload
                        data = payload if isinstance(payload, bytes) else str(payload).encode()
                        for line in data.splitlines():
                            if line.strip():
                                yield line
            except aiomqtt.MqttError as exc:
                log.warning("device bus down", error=str(exc))
            await asyncio.sleep(self._backoff.next_delay())
