"""The MQTT shell: paho-mqtt 2.x, MQTT v5, manual acknowledgement, a persistent session.

- Fixed client id, ``clean_start=False`` on every connect (paho's v5 default ``MQTT_CLEAN_START_FIRST_ONLY``
  would wipe the broker session when a fresh process starts and lose what was queued while ingest was down)
  and a Session Expiry Interval, so the broker queues QoS 1 messages for us while we are away.
- ``manual_ack=True``: a message is acknowledged only after the batch holding it committed, in receive order
  (MQTT v5 4.6: PUBACKs in the order the PUBLISHes arrived).
- Receive Maximum = the receive queue bound: the broker never has more unacknowledged messages in flight to
  us, so while the database is down and nothing is acked, the broker stops sending and memory stays bounded.
- Numbered records come through ``$share/{group}/...`` so N processes split them; retained state, births and
  heartbeats are subscribed without ``$share`` (MQTT 5 4.8.2: no retained messages on shared subscriptions).
- A message is acked only on the connection that delivered it (``gen``): after a reconnect the broker
  redelivers what was unacked, and the redelivered copy is acked instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.classify import Inbound
from runtime import logs
from wire import Watermark, encode, topics

__all__ = ["Subscriber"]

_SHARED = (topics.TELEMETRY_FILTER, topics.EVENT_FILTER, topics.PROCEDURE_FILTER)
_RETAINED = (topics.STATE_FILTER, topics.BIRTH_FILTER, topics.STATUS_FILTER)


class Subscriber:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        client_id: str,
        group: str,
        session_expiry_s: int,
        keepalive_s: int,
        receive_maximum: int,
        on_inbound: Callable[[Inbound], None],
    ) -> None:
        self._host, self._port, self._keepalive = host, port, keepalive_s
        self._group = group
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._on_inbound = on_inbound
        self._log = logs.get("ingest.mqtt", client_id=client_id)
        self._lock = threading.Lock()  # orders acks against the connection generation
        self._gen = 0
        self.connected = False
        self.subscribed = False  # SUBACK of the current connection received, every filter granted
        self.refused = ""  # the last refusal (connect, subscribe, watermark) since the last good connect
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        self._client.username_pw_set(username, password)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.max_queued_messages_set(10_000)  # watermarks while disconnected; retained, recomputed
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish

    def __enter__(self) -> Subscriber:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry_s
        props.ReceiveMaximum = self._receive_maximum
        self._client.connect_async(
            self._host, self._port, keepalive=self._keepalive, clean_start=False, properties=props
        )
        self._client.loop_start()  # its thread reconnects by itself, keeping the session
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # ---------------------------------------------------------------- called from the writer thread

    def ack(self, inbounds: Sequence[Inbound]) -> int:
        """PUBACK, in order, the QoS 1 messages of ``inbounds`` received on the current connection."""
        n = 0
        with self._lock:
            for inbound in inbounds:
                if inbound.qos > 0 and inbound.gen == self._gen:
                    self._client.ack(inbound.mid, inbound.qos)
                    n += 1
        return n

    def publish_watermark(self, mark: Watermark) -> None:
        info = self._client.publish(topics.ack(mark.gateway_id, mark.stream), encode(mark), qos=1, retain=True)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self._log.warning("watermark_not_queued", stream=mark.stream, rc=int(info.rc))

    # ---------------------------------------------------------------- paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self._log.error("connect_refused", reason=str(rc))
            self.refused = f"connect: {rc}"
            return
        self.connected = True
        self.refused = ""
        self._log.info("connected", session_present=flags.session_present)
        subs = [(topics.shared(self._group, f), SubscribeOptions(qos=1)) for f in _SHARED]
        subs += [(f, SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB))
                 for f in _RETAINED]
        client.subscribe(subs)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: list[Any], _p: Any) -> None:
        refused = [code for code in codes if code.is_failure]
        for code in refused:
            self._log.error("subscribe_refused", reason=str(code))
            self.refused = f"subscribe: {code}"
        self.subscribed = not refused

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self._log.error("watermark_refused", mid=mid, reason=str(rc))
            self.refused = f"watermark: {rc}"

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, rc: Any, _p: Any) -> None:
        with self._lock:
            self._gen += 1
        self.connected = self.subscribed = False
        (self._log.warning if rc.is_failure else self._log.info)("disconnected", reason=str(rc))

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            # The raw topic: paho raises on invalid UTF-8 in ``msg.topic``; we dead-letter instead.
            topic = msg._topic.decode("utf-8", errors="replace")
            self._on_inbound(Inbound(topic, bytes(msg.payload), msg.mid, msg.qos, self._gen))
        except Exception:  # never let a callback error kill paho's network thread
            self._log.exception("on_message_failed")
