"""aiomqtt 2.x client that reports the PUBACK reason code.

aiomqtt 2.x's ``publish`` returns once the PUBACK arrives but drops its reason code (``Client._on_publish``
ignores it), and in MQTT 5 a PUBACK >= 0x80 means the broker *discarded* the message (0x87 not authorised,
0x97 quota / size). ``CheckedClient.publish_checked`` keeps the code per packet id and raises
``PublishRejected`` for a failure. It relies on aiomqtt 2.x internals (pinned <3 in pyproject).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from aiomqtt.exceptions import MqttCodeError
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.errors import PublishRejected

__all__ = ["CheckedClient", "tls_context"]


class CheckedClient(aiomqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reason_codes: dict[int, ReasonCode] = {}

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    properties: Any) -> None:
        self._reason_codes[mid] = reason_code
        super()._on_publish(client, userdata, mid, reason_code, properties)

    async def publish_checked(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                              timeout: float = 30.0) -> None:
        info = self._client.publish(topic, payload, qos, retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise MqttCodeError(info.rc, "Could not publish message")
        try:
            if not info.is_published():
                confirmation = asyncio.Event()
                with self._pending_call(info.mid, confirmation, self._pending_publishes):
                    await self._wait_for(confirmation.wait(), timeout=timeout)
            code = self._reason_codes.get(info.mid)
        finally:
            self._reason_codes.pop(info.mid, None)
        if code is not None and code.is_failure:
            raise PublishRejected(topic=topic, reason_code=code.value, reason=str(code))


def tls_context(cafile: Path | None, certfile: Path | None, keyfile: Path | None) -> ssl.SSLContext | None:
    if cafile is None:
        return None
    context = ssl.create_default_context(cafile=str(cafile))
    if certfile is not None:
        context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
    return context
