"""The uplink: one broker connection at a time, reconnecting with ``runtime.backoff.Backoff``.

Per connection (one TaskGroup): retained GatewayState birth (its Last Will is the retained death), retained
DeviceBirths, the watermark subscription ``ortel/v1/{gw}/ack/+``, the send loop (bounded in-flight window,
events before telemetry, rate-limited backlog replay with ``replay=True``) and device heartbeats. A failed
connection cancels the group; the next one starts over from the outbox, which is the only session state that
matters (clean_start: the broker's session would be lost by a broker crash anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from aiomqtt import MqttError, ProtocolVersion, Will

from edge_agent.client import CheckedClient, tls_context
from edge_agent.errors import PublishRejected
from edge_agent.metrics import AgentMetrics
from edge_agent.outbox import AsyncOutbox, Outbox, Row
from edge_agent.reports import DEAD_LETTER_CODE, dead_letter_reports
from edge_agent.sendstate import SendState
from runtime import logs
from runtime.backoff import Backoff
from wire import DecodeError, GatewayState, Watermark, decode, encode, topics
from wire.models import DeviceStatus

__all__ = ["Link", "LinkConfig"]

log = logs.get("edge_agent.publisher")
POISON_STRIKES = 3  # connections lost while one record was the first awaiting PUBACK: it is the cause


@dataclass(frozen=True, slots=True)
class LinkConfig:
    gateway_id: str
    room: str | None
    boot_id: str
    host: str
    port: int
    username: str
    password: str | None
    cafile: object = None
    certfile: object = None
    keyfile: object = None
    keepalive_s: int = 15
    window: int = 500
    ack_timeout_s: float = 30.0
    replay_rate: float = 2000.0
    max_payload_bytes: int = 256 * 1024
    suspect_min_bytes: int = 64 * 1024
    agent_version: str = "0.1.0"


class _Shutdown(Exception):
    """Raised inside a connection's TaskGroup to end it after a graceful goodbye."""


def _as_replay(payload: bytes) -> bytes:
    body = orjson.loads(payload)
    body["replay"] = True
    return orjson.dumps(body)


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass
class Link:
    config: LinkConfig
    outbox: AsyncOutbox
    metrics: AgentMetrics
    backoff: Backoff
    clock: Callable[[], int] = now_us
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    births: dict[str, bytes] = field(default_factory=dict)  # device -> retained DeviceBirth payload
    statuses: dict[str, bytes] = field(default_factory=dict)  # device -> newest DeviceStatus not yet sent
    connected: bool = False
    inflight: int = 0
    _dirty_births: set[str] = field(default_factory=set)
    _acks: dict[str, int] = field(default_factory=dict)
    _ack_event: asyncio.Event = field(default_factory=asyncio.Event)
    _resend: list[Row] = field(default_factory=list)
    _pending: dict[int, Row] = field(default_factory=dict)  # published, PUBACK not yet seen, in send order
    _strikes: dict[int, int] = field(default_factory=dict)  # row id -> connections lost while it was first

    # ------------------------------------------------------------------------------------------ inputs
    def set_birth(self, device_id: str, payload: bytes) -> None:
        self.births[device_id] = payload
        self._dirty_births.add(device_id)
        self.wake.set()

    def set_status(self, status: DeviceStatus) -> None:
        self.statuses[status.device_id] = encode(status)

    # ------------------------------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event, grace_s: float) -> None:
        """Connect, send, reconnect with backoff, until ``stop`` is set (then say goodbye and return)."""
        first = True
        while not stop.is_set():
            if not first:
                self.metrics.reconnects.inc()
            first = False
            try:
                await self._connection(stop, grace_s)
                return
            except* (MqttError, OSError) as group:
                log.warning("broker link down", error=str(group.exceptions[0]))
                self._strike()
            finally:
                self.connected = False
                self.metrics.connected.set(0)
                self.inflight = 0
            delay = self.backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    def _strike(self) -> None:
        """Count a lost connection against the earliest record still awaiting its PUBACK.

        The broker answers in order, so that record is the one it choked on if any. Mosquitto 2.0 answers an
        over-``message_size_limit`` publish with PUBACK 0x95, which paho cannot parse: it drops the connection
        instead of reporting the code. Without this count such a record would be retried forever.
        """
        if self.connected and self._pending:
            first, row = next(iter(self._pending.items()))
            # Only a record big enough to break a broker limit is a suspect: blaming a small one would drop
            # good data whenever the link flaps (broker crash loop, flaky network) three times in a row.
            if len(row.payload) >= self.config.suspect_min_bytes:
                self._strikes[first] = self._strikes.get(first, 0) + 1
        self._pending.clear()

    def _client(self) -> CheckedClient:
        c = self.config
        death = GatewayState(gateway_id=c.gateway_id, state="offline", ts_us=self.clock(), boot_id=c.boot_id,
                             room=c.room, agent_version=c.agent_version)
        client = CheckedClient(
            c.host, c.port, username=c.username, password=c.password, identifier=f"ortel-agent-{c.gateway_id}",
            protocol=ProtocolVersion.V5, will=Will(topics.gateway_state(c.gateway_id), encode(death), 1, True),
            keepalive=c.keepalive_s, clean_start=True, max_inflight_messages=c.window + 16,
            tls_context=tls_context(c.cafile, c.certfile, c.keyfile),  # type: ignore[arg-type]
            timeout=max(10.0, c.ack_timeout_s),
        )
        client.pending_calls_threshold = c.window + 64  # aiomqtt warns above 10 pending calls by default
        return client

    async def _connection(self, stop: asyncio.Event, grace_s: float) -> None:
        c = self.config
        async with self._client() as client:
            self.connected = True
            self.metrics.connected.set(1)
            self.backoff.reset()
            log.info("connected", host=c.host, port=c.port)
            await self._hello(client)
            mark = await self.outbox.call(self.outbox.sync.max_id)
            state = SendState.begin(mark_id=mark, ack_timeout_us=int(c.ack_timeout_s * 1e6),
                                    replay_rate=c.replay_rate, now_us=self.clock())
            self._resend.clear()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._receive_acks(client, state), name="acks")
                    tg.create_task(self._apply_acks(), name="apply-acks")
                    tg.create_task(self._send_loop(client, state, tg), name="send")
                    tg.create_task(self._heartbeats(client), name="heartbeats")
                    tg.create_task(self._until_stopped(client, stop, grace_s), name="stop")
            except* _Shutdown:
                log.info("disconnected gracefully")

    async def _hello(self, client: CheckedClient) -> None:
        c = self.config
        birth = GatewayState(gateway_id=c.gateway_id, state="online", ts_us=self.clock(), boot_id=c.boot_id,
                             room=c.room, agent_version=c.agent_version)
        await self._publish_state(client, birth)
        codes = await client.subscribe(topics.ack(c.gateway_id, "+"), qos=1)
        if any(getattr(code, "is_failure", False) for code in codes):
            raise MqttError(f"watermark subscription refused: {codes}")
        self._dirty_births = set(self.births)
        await self._publish_births(client)

    async def _publish_births(self, client: CheckedClient) -> None:
        while self._dirty_births:
            device_id = self._dirty_births.pop()
            try:
                await client.publish_checked(topics.device(self.config.gateway_id, device_id, topics.Kind.BIRTH),
                                             self.births[device_id], retain=True)
            except PublishRejected as exc:
                log.error("device birth refused", device_id=device_id, error=str(exc))

    async def _until_stopped(self, client: CheckedClient, stop: asyncio.Event, grace_s: float) -> None:
        await stop.wait()
        deadline = time.monotonic() + grace_s
        # Poll, bounded by the grace: let the window drain before saying goodbye.
        while time.monotonic() < deadline and (self.inflight or self.wake.is_set()):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        c = self.config
        death = GatewayState(gateway_id=c.gateway_id, state="offline", ts_us=self.clock(), boot_id=c.boot_id,
                             room=c.room, agent_version=c.agent_version)
        await self._publish_state(client, death)
        raise _Shutdown

    async def _publish_state(self, client: CheckedClient, state: GatewayState) -> None:
        try:
            await client.publish_checked(topics.gateway_state(state.gateway_id), encode(state), retain=True)
        except PublishRejected as exc:  # a login that does not own this gateway id: say so, keep the outbox
            log.error("gateway state refused: check mqtt.username against gateway_id", error=str(exc))

    # ------------------------------------------------------------------------------------------ watermarks
    async def _receive_acks(self, client: CheckedClient, state: SendState) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            try:
                _, wm = decode(str(message.topic), payload)
            except DecodeError as exc:
                log.warning("bad watermark", topic=str(message.topic), reason=exc.reason)
                continue
            if not isinstance(wm, Watermark) or wm.gateway_id != self.config.gateway_id:
                continue
            if state.acked(stream=wm.stream, seq=wm.seq, now_us=self.clock()):
                self._acks[wm.stream] = max(wm.seq, self._acks.get(wm.stream, 0))
                self._ack_event.set()

    async def _apply_acks(self) -> None:
        """Delete acknowledged records in one transaction per burst of watermarks, not one per watermark."""
        while True:
            await self._ack_event.wait()
            self._ack_event.clear()
            acks, self._acks = self._acks, {}
            deleted = await self.outbox.call(_acknowledge_all, self.outbox.sync, acks)
            self.metrics.acked.inc(deleted)
            self.wake.set()

    # ------------------------------------------------------------------------------------------ sending
    async def _send_loop(self, client: CheckedClient, state: SendState, tg: asyncio.TaskGroup) -> None:
        window = asyncio.Semaphore(self.config.window)
        while True:
            if self._dirty_births:
                await self._publish_births(client)
            self.wake.clear()
            rows = await self._next_rows(state)
            if not rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), 0.05)
                continue
            for row, replay in rows:
                await window.acquire()
                publish = self._publish_row(client, state, row, replay, window)
                try:
                    tg.create_task(publish)
                except RuntimeError:  # the connection is failing: the group is cancelling us; stop here
                    publish.close()
                    window.release()
                    await asyncio.sleep(0)  # deliver the pending cancellation
                    return
                self.inflight += 1
                self.metrics.inflight.set(self.inflight)

    async def _next_rows(self, state: SendState) -> list[tuple[Row, bool]]:
        now = self.clock()
        for stream, watermark, sent_id in state.stalled(now):
            self.metrics.resends.inc()
            log.info("re-sending unacknowledged records", stream=stream, after_seq=watermark)
            queued = {r.id for r in self._resend}
            again = await self.outbox.call(self.outbox.sync.fetch_stream, stream, after_seq=watermark,
                                           max_id=sent_id, limit=10 * self.config.window)
            self._resend += [r for r in again if r.id not in queued]
        room = max(1, self.config.window)
        rows = [(r, True) for r in self._resend[:room]]
        del self._resend[:room]
        room -= len(rows)
        if room <= 0:
            return rows
        budget = state.bucket.take(room, now)
        fetched = await self.outbox.call(_fetch_round, self.outbox.sync, state, room, budget)
        state.bucket.tokens += budget - sum(1 for r in fetched if r.id <= state.mark_id and r.priority == 1)
        for row in fetched:
            if row.priority == 0:
                state.event_cursor = max(state.event_cursor, row.id)
            elif row.id > state.mark_id:
                state.live_cursor = max(state.live_cursor, row.id)
            else:
                state.backlog_cursor = max(state.backlog_cursor, row.id)
        return rows + [(r, state.is_replay(r.id)) for r in fetched]

    async def _publish_row(self, client: CheckedClient, state: SendState, row: Row, replay: bool,
                           window: asyncio.Semaphore) -> None:
        try:
            payload = _as_replay(row.payload) if replay else row.payload  # the bytes that go out are checked
            if len(payload) > self.config.max_payload_bytes:
                raise PublishRejected(topic=row.topic, reason_code=0x95,
                                      reason=f"payload {len(payload)} B > local limit")
            if self._strikes.get(row.id, 0) >= POISON_STRIKES:
                raise PublishRejected(topic=row.topic, reason_code=0x95,
                                      reason=f"connection lost {POISON_STRIKES} times while sending it")
            self._pending[row.id] = row
            await client.publish_checked(row.topic, payload, timeout=max(10.0, self.config.ack_timeout_s))
            self._pending.pop(row.id, None)
            self._strikes.pop(row.id, None)
            state.sent(stream=row.stream, seq=row.seq, row_id=row.id, now_us=self.clock())
            self.metrics.published.labels(replay=str(replay).lower()).inc()
        except PublishRejected as exc:
            self._pending.pop(row.id, None)
            self._strikes.pop(row.id, None)
            await self._dead_letter(row, exc)
        finally:
            self.inflight -= 1
            self.metrics.inflight.set(self.inflight)
            window.release()

    async def _dead_letter(self, row: Row, exc: PublishRejected) -> None:
        log.error("record refused by the broker: dead-lettered locally", stream=row.stream, seq=row.seq,
                  reason_code=exc.reason_code, reason=exc.reason)
        self.metrics.dead_letters.inc()
        is_report = b'"outbox_drop"' in row.payload or DEAD_LETTER_CODE.encode() in row.payload
        reports = dead_letter_reports(self.config.gateway_id, stream=row.stream, seq=row.seq,
                                      reason_code=exc.reason_code, reason=exc.reason, now_us=self.clock(),
                                      is_report=is_report)
        await self.outbox.call(self.outbox.sync.dead_letter, row, f"0x{exc.reason_code:02x} {exc.reason}",
                               self.clock(), reports)
        self.wake.set()

    async def _heartbeats(self, client: CheckedClient) -> None:
        while True:
            while self.statuses:
                device_id, payload = self.statuses.popitem()
                topic = topics.device(self.config.gateway_id, device_id, topics.Kind.STATUS)
                try:
                    await client.publish_checked(topic, payload, qos=1)
                except PublishRejected as exc:
                    log.warning("status refused", device_id=device_id, error=str(exc))
            await asyncio.sleep(0.2)  # heartbeat cadence is seconds; this only bounds their latency


def _acknowledge_all(outbox: Outbox, acks: dict[str, int]) -> int:
    return outbox.acknowledge_many(acks)


def _fetch_round(outbox: Outbox, state: SendState, room: int, budget: int) -> list[Row]:
    """Events first, then live telemetry, then up to ``budget`` backlog telemetry; one thread hop."""
    rows = outbox.fetch(priority=0, after_id=state.event_cursor, limit=room)
    rows += outbox.fetch(priority=1, after_id=max(state.live_cursor, state.mark_id), limit=room - len(rows))
    if budget > 0 and len(rows) < room:
        rows += outbox.fetch(priority=1, after_id=state.backlog_cursor, max_id=state.mark_id,
                             limit=min(budget, room - len(rows)))
    return rows
