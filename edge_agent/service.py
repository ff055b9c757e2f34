"""The agent service: adapters -> pipeline -> outbox -> link, in one TaskGroup.

    run_agent(settings, adapters=[...], stop=event)

Tasks: one pump per adapter (parse, normalise, queue drafts), a ticker (seal due batches, heartbeats, commit
drafts in one fsync'd transaction, refresh gauges), the broker link, and a supervisor that on ``stop`` (or,
with ``exit_when_drained``, once the adapters are exhausted and the outbox is empty) stops the inputs, seals
and commits every open batch, and lets the link send for ``shutdown_grace_s`` before it says goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from pydantic import BaseModel

from edge_agent.adapters import Adapter, LineItem
from edge_agent.metrics import AgentMetrics
from edge_agent.outbox import AsyncOutbox, DropRun, Outbox
from edge_agent.pipeline import Draft, Line, Output, Pipeline, Rejected
from edge_agent.publisher import Link, LinkConfig, now_us
from edge_agent.reports import drop_report
from edge_agent.rules import RateRule, Rule, RuleEngine, ThresholdRule
from edge_agent.settings import AgentSettings, RuleSettings
from runtime import logs
from runtime.backoff import Backoff
from runtime.ops_http import serve_ops
from wire import DecodeError, DeviceBirth, encode
from wire.device import parse_line
from wire.models import DeviceStatus, Event, EventKind, TelemetryBatch

__all__ = ["Agent", "adapters_from_settings", "build_rules", "load_key", "run_agent"]

log = logs.get("edge_agent.service")
COMMIT_EVERY = 512  # drafts: beyond this a pump commits itself instead of waiting for the ticker
TICK_S = 0.025


def build_rules(rules: Sequence[RuleSettings]) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for r in rules:
        common = {"metric": r.metric, "device_type": r.device_type, "device_id": r.device_id, "code": r.code,
                  "severity": r.severity, "text": r.text}
        if r.kind == "threshold":
            out.append(ThresholdRule(above=r.above, below=r.below, for_s=r.for_s, **common))  # type: ignore[arg-type]
        else:
            out.append(RateRule(max_rate_per_s=r.max_rate_per_s or 0.0, **common))  # type: ignore[arg-type]
    return tuple(out)


def load_key(settings: AgentSettings) -> bytes:
    """The pseudonym key: configured, or created once beside the outbox (mode 0600) and reused."""
    if settings.privacy.key is not None:
        return settings.privacy.key.get_secret_value().encode()
    path = Path(f"{settings.outbox_path}.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


@dataclass
class Agent:
    settings: AgentSettings
    adapters: Sequence[Adapter]
    clock: Callable[[], int] = now_us
    metrics: AgentMetrics = field(default_factory=AgentMetrics)
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def __post_init__(self) -> None:
        s = self.settings
        self.pipeline = Pipeline.create(
            gateway_id=s.gateway_id, room=s.room, key=load_key(s), patterns=s.privacy.patterns,
            rules=RuleEngine(build_rules(s.rules)), max_rows=s.batch_max_samples,
            max_age_us=int(s.flush_interval_s * 1e6), jump_threshold_us=int(s.clock_jump_threshold_s * 1e6),
            default_heartbeat_s=s.heartbeat_s,
        )
        self.outbox = AsyncOutbox(Outbox(path=s.outbox_path, max_bytes=s.outbox_max_bytes,
                                         max_age_us=int(s.outbox_max_age_s * 1e6), report_drop=self._report_drop))
        self._drafts: list[Draft] = []
        self._births: list[DeviceBirth] = []
        self._commit_lock = asyncio.Lock()
        self.link: Link | None = None
        self.ops_port: int | None = None

    def _report_drop(self, run: DropRun, now: int) -> Draft:
        return drop_report(self.settings.gateway_id, stream=run.stream, from_seq=run.from_seq, to_seq=run.to_seq,
                           count=run.count, reason=run.reason, now_us=now)

    def _link(self) -> Link:
        s = self.settings
        config = LinkConfig(
            gateway_id=s.gateway_id, room=s.room, boot_id=self.boot_id, host=s.mqtt.host, port=s.mqtt.port,
            username=s.broker_username, password=s.mqtt.password.get_secret_value() if s.mqtt.password else None,
            cafile=s.mqtt.cafile, certfile=s.mqtt.certfile, keyfile=s.mqtt.keyfile, keepalive_s=s.mqtt.keepalive_s,
            window=s.inflight_window, ack_timeout_s=s.ack_timeout_s, replay_rate=s.replay_rate,
            max_payload_bytes=s.max_payload_bytes, suspect_min_bytes=s.oversize_suspect_bytes,
        )
        # Seeded per gateway and boot: a fleet that lost the broker together must not retry in lockstep.
        rng = random.Random(f"{s.gateway_id}/{self.boot_id}")
        backoff = Backoff(base_s=s.reconnect_base_s, cap_s=max(s.reconnect_cap_s, s.reconnect_base_s), rng=rng)
        return Link(config=config, outbox=self.outbox, metrics=self.metrics, backoff=backoff, clock=self.clock)

    # ------------------------------------------------------------------------------------------ run
    async def run(self, stop: asyncio.Event) -> None:
        # Every log line of this agent, from every task it starts, names its gateway (several agents can run in
        # one process, e.g. `ortel simulate`): tasks copy the context they are created in.
        with structlog.contextvars.bound_contextvars(gateway_id=self.settings.gateway_id):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        async with self.outbox:
            self.link = self._link()
            await self._restore()
            with self._ops():
                link_stop = asyncio.Event()
                async with asyncio.TaskGroup() as tg:
                    pumps = [tg.create_task(self._pump(a), name=f"pump-{a.name}") for a in self.adapters]
                    tg.create_task(self._ticker(link_stop), name="ticker")
                    tg.create_task(self.link.run(link_stop, self.settings.shutdown_grace_s), name="link")
                    tg.create_task(self._supervise(pumps, stop, link_stop), name="supervisor")
        log.info("agent stopped")

    async def _restore(self) -> None:
        """Births of devices seen before a restart: re-announced on connect, known to the pipeline."""
        assert self.link is not None
        for payload in await self.outbox.call(self.outbox.sync.births):
            birth = DeviceBirth.model_validate_json(payload)
            self.pipeline.restore(birth)
            self.link.set_birth(birth.device_id, payload)

    @contextlib.contextmanager
    def _ops(self) -> Iterator[None]:
        if self.settings.ops_port is None:
            yield
            return
        with serve_ops(self.settings.ops_host, self.settings.ops_port, health=self.health,
                       registry=self.metrics.registry) as server:
            self.ops_port = server.server_port
            log.info("ops endpoint", url=f"http://{self.settings.ops_host}:{server.server_port}/metrics")
            yield

    def health(self) -> tuple[bool, dict[str, object]]:
        box = self.outbox.sync
        ok = box.total_bytes <= box.max_bytes
        connected = bool(self.link and self.link.connected)
        return ok, {"connected": connected, "outbox_records": box.records, "outbox_bytes": box.total_bytes,
                    "boot_id": self.boot_id}

    async def _supervise(self, pumps: list[asyncio.Task[None]], stop: asyncio.Event, link_stop: asyncio.Event) -> None:
        drained_exit = self.settings.exit_when_drained
        while not stop.is_set():
            if drained_exit and all(p.done() for p in pumps):
                await self._flush_all()
                if self.outbox.sync.records == 0 and not self._drafts:
                    break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await self._flush_all()
        log.info("inputs stopped; outbox committed", records=self.outbox.sync.records)
        link_stop.set()

    # ------------------------------------------------------------------------------------------ inputs
    async def _pump(self, adapter: Adapter) -> None:
        lines = self.metrics.lines.labels(adapter=adapter.name)
        bad = self.metrics.bad_lines.labels(adapter=adapter.name)
        async for item in adapter.lines():
            lines.inc()
            line = self._parse(item, adapter.name)
            if line is None:
                bad.inc()
                continue
            self._route(self.pipeline.handle(line, self.clock()))
            if len(self._drafts) >= COMMIT_EVERY:
                await self._commit()
        log.info("adapter exhausted", adapter=adapter.name)

    def _parse(self, item: LineItem, source: str) -> Line | None:
        if not isinstance(item, bytes):
            return item
        try:
            return parse_line(item, source=source)
        except DecodeError as exc:
            log.warning("bad device line", adapter=source, reason=exc.reason, detail=exc.detail[:200])
            return None

    def _route(self, outputs: Sequence[Output]) -> None:
        assert self.link is not None
        for out in outputs:
            if isinstance(out, Draft):
                if not isinstance(out.message, TelemetryBatch) and self._leaks(out.message):
                    continue
                self._drafts.append(out)
                if isinstance(out.message, Event):
                    self._count_event(out.message)
            elif isinstance(out, DeviceBirth):
                if self._leaks(out):
                    continue
                self._births.append(out)
                self.link.set_birth(out.device_id, encode(out))
            elif isinstance(out, DeviceStatus):
                self.link.set_status(out)
            elif isinstance(out, Rejected):
                self.metrics.bad_lines.labels(adapter="pipeline").inc()
                log.warning("line rejected", device_id=out.device_id, detail=out.detail[:200])

    def _leaks(self, message: BaseModel) -> bool:
        """The last check before a record is stored or a birth published: no configured identifier pattern in
        any of its strings. Every free-text field is scrubbed already, so a match is an id that looks like a
        patient identifier, or a bug: the record is refused (counted, logged without the match) rather than
        sent. Numbers are not checked; telemetry carries only numbers and ids and is not checked at all."""
        found = self.pipeline.scrub.leaks_in(message.model_dump(mode="json"))
        if found:
            self.metrics.bad_lines.labels(adapter="privacy").inc()
            log.error("record withheld: it still matches an identifier pattern", kind=type(message).__name__,
                      device_id=getattr(message, "device_id", None), matches=len(found))
        return bool(found)

    def _count_event(self, event: Event) -> None:
        if event.kind is EventKind.CLOCK_JUMP:
            self.metrics.clock_jumps.inc()
            log.warning("device clock jump", device_id=event.device_id, jump_us=event.attrs.get("jump_us"))
        elif event.kind is EventKind.ALARM_RAISED:
            self.metrics.alarms.inc()

    # ------------------------------------------------------------------------------------------ commits
    async def _commit(self) -> None:
        async with self._commit_lock:
            drafts, self._drafts = self._drafts, []
            births, self._births = self._births, []
            if not drafts and not births:
                return
            box = self.outbox.sync
            for birth in births:
                await self.outbox.call(box.save_birth, birth.device_id, encode(birth))
            drops = await self.outbox.call(box.append, drafts, self.clock()) if drafts else []
            self.metrics.appended.inc(len(drafts) + len(drops))
            for run in drops:
                self.metrics.dropped.labels(reason=run.reason).inc(run.count)
                log.warning("outbox full: dropped telemetry", stream=run.stream, from_seq=run.from_seq,
                            to_seq=run.to_seq, count=run.count, reason=run.reason)
            assert self.link is not None
            self.link.wake.set()

    async def _flush_all(self) -> None:
        self._route(self.pipeline.drain(self.clock()))
        await self._commit()

    async def _ticker(self, done: asyncio.Event) -> None:
        last_gauges = 0.0
        while not done.is_set():
            now = self.clock()
            self._route(self.pipeline.due(now))
            self._route(self.pipeline.heartbeats(now))
            await self._commit()
            if time.monotonic() - last_gauges > 1.0:
                last_gauges = time.monotonic()
                await self._gauges(now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), TICK_S)

    async def _gauges(self, now: int) -> None:
        box = self.outbox.sync
        oldest = await self.outbox.call(box.oldest_created_us)
        self.metrics.outbox_records.set(box.records)
        self.metrics.outbox_bytes.set(box.total_bytes)
        self.metrics.outbox_oldest_age.set(max(0, now - oldest) / 1e6 if oldest else 0)


async def run_agent(settings: AgentSettings, *, adapters: Sequence[Adapter] = (),
                    stop: asyncio.Event | None = None) -> None:
    """Run the edge agent until ``stop`` is set (or drained, with ``settings.exit_when_drained``)."""
    await Agent(settings=settings, adapters=adapters).run(stop or asyncio.Event())


def adapters_from_settings(settings: AgentSettings) -> list[Adapter]:
    """The network/serial adapters the config enables (the in-process one is composed by the caller)."""
    a = settings.adapters
    out: list[Adapter] = []
    if a.tcp_port is not None:
        from edge_agent.adapters.tcp import TcpAdapter

        out.append(TcpAdapter(host=a.tcp_host, port=a.tcp_port))
    if a.mqtt_bus_host is not None:
        from edge_agent.adapters.mqtt_bus import MqttBusAdapter

        password = a.mqtt_bus_password.get_secret_value() if a.mqtt_bus_password else None
        out.append(MqttBusAdapter(host=a.mqtt_bus_host, port=a.mqtt_bus_port, topic=a.mqtt_bus_topic,
                                  username=a.mqtt_bus_username, password=password))
    if a.serial_port is not None:
        from edge_agent.adapters.serial import SerialAdapter

        out.append(SerialAdapter(port=a.serial_port, baud=a.serial_baud))
    return out
