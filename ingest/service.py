"""The ingest service: MQTT in, PostgreSQL out, acks and watermarks back.

    paho network thread ──Inbound──▶ bounded queue ──▶ writer loop (caller's thread)
                                                         classify · batch ──▶ writer thread: batch N written
                                                         (1 transaction) while N+1 is decoded and batched
                                                         ◀── ack N in order · publish watermarks
    refresher thread: samples_1m on plain PostgreSQL      ops thread: /metrics, /healthz

``run_ingest`` is synchronous (paho and psycopg are used in blocking mode) and returns when ``stop`` is set,
after committing and acknowledging the batch in flight and the one it holds. While the database is unavailable
the writer thread retries the same batch with capped, jittered backoff and nothing is acked; the loop holds at
most one more batch, and the broker stops sending at Receive Maximum.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg_pool import ConnectionPool

from ingest.batcher import Batcher
from ingest.classify import Accepted, DeadLetter, Inbound, Item, classify, sample_count
from ingest.errors import StoreUnavailable
from ingest.metrics import Metrics
from ingest.rows import Limits
from ingest.settings import IngestSettings
from ingest.subscriber import Subscriber
from ingest.writer import Outcome, Writer, configure_connection
from runtime import logs
from runtime.backoff import Backoff
from runtime.ops_http import serve_ops
from wire import TelemetryBatch, Watermark

__all__ = ["run_ingest"]

_FLIGHT_POLL_S = 0.005  # while a batch is in flight, how long an idle loop waits before checking on it


def run_ingest(settings: IngestSettings, *, stop: threading.Event | None = None) -> None:
    """Run until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT)."""
    stop = stop or threading.Event()
    log = logs.get("ingest", client_id=settings.client_id)
    metrics = Metrics()
    inbox: queue.Queue[Inbound] = queue.Queue(maxsize=settings.queue_max)
    state: dict[str, Any] = {"db_ok": True}

    def enqueue(inbound: Inbound) -> None:
        # Blocking here stalls paho's reader (TCP backpressure); with Receive Maximum = queue bound it only
        # happens for QoS 0 floods.
        metrics.received.inc()
        while not stop.is_set():
            try:
                inbox.put(inbound, timeout=0.5)
                return
            except queue.Full:
                continue

    sub = Subscriber(
        host=settings.mqtt_host, port=settings.mqtt_port, username=settings.mqtt_user,
        password=settings.mqtt_password, client_id=settings.client_id, group=settings.group,
        session_expiry_s=settings.session_expiry_s, keepalive_s=settings.keepalive_s,
        receive_maximum=settings.queue_max, on_inbound=enqueue,
    )  # fmt: skip

    def health() -> tuple[bool, dict[str, Any]]:
        ok = sub.subscribed and state["db_ok"] and not sub.refused
        return ok, {"mqtt": sub.connected, "subscribed": sub.subscribed, "db": state["db_ok"],
                    "refused": sub.refused, "queue": inbox.qsize()}

    fault = _Fault.parse(settings.fault)
    pool = ConnectionPool(
        settings.dsn, min_size=1, max_size=settings.pool_max, open=False, configure=configure_connection,
        check=ConnectionPool.check_connection, timeout=2.0, reconnect_timeout=0, name="ingest",
    )  # fmt: skip
    loop = _WriterLoop(
        settings=settings, inbox=inbox, sub=sub, writer=Writer(pool, before_commit=fault.before_commit),
        metrics=metrics, state=state, fault=fault, log=log,
    )  # fmt: skip
    with (
        _opened(pool),
        serve_ops(settings.ops_host, settings.ops_port, health=health, registry=metrics.registry) as ops,
        _refresher(pool, settings.refresh_interval_s, log),
        sub,
    ):
        log.info("ingest_started", ops_port=ops.server_port, group=settings.group)
        loop.run(stop)
    log.info("ingest_stopped")


@contextmanager
def _opened(pool: ConnectionPool) -> Iterator[ConnectionPool]:
    pool.open(wait=False)  # the database may still be down: the writer's retries wait for it
    try:
        yield pool
    finally:
        pool.close()


class _WriterLoop:
    def __init__(
        self, *, settings: IngestSettings, inbox: queue.Queue[Inbound], sub: Subscriber, writer: Writer,
        metrics: Metrics, state: dict[str, Any], fault: _Fault, log: Any,
    ) -> None:  # fmt: skip
        self._s = settings
        self._inbox, self._sub, self._writer, self._m = inbox, sub, writer, metrics
        self._state, self._fault, self._log = state, fault, log
        self._limits = Limits(
            max_future_us=int(settings.max_future_s * 1e6), max_past_us=int(settings.max_past_s * 1e6)
        )
        self._batcher: Batcher[Item] = Batcher(
            max_messages=settings.batch_max_messages, max_samples=settings.batch_max_samples,
            max_age_s=settings.batch_max_age_s, clock=time.monotonic,
        )  # fmt: skip
        self._backoff = Backoff(base_s=0.2, cap_s=5.0)  # used by the writer thread only
        self._flight: _Flight | None = None

    def run(self, stop: threading.Event) -> None:
        # One dedicated writer thread, at most one batch in flight: the database commits batch N while this
        # thread decodes and batches N+1 (ingest otherwise waits on PostgreSQL most of the time). Acks,
        # watermarks and metrics stay on this thread, batch after batch, so PUBACKs keep the receive order.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer") as worker:
            while not stop.is_set():
                self._receive_one()
                if self._flight is not None and (self._flight.future.done() or self._batcher.due()):
                    self._land(self._flight)  # blocks only when the next batch is due and N is still writing
                if self._flight is None and self._batcher.due():
                    self._flight = self._launch(worker, self._batcher.take(), stop, retry=True)
            # Graceful stop: finish the batch in flight, then commit and ack what we hold (a failed write is
            # not retried and not acked); the queue's rest is redelivered to the next session.
            if self._flight is not None:
                self._land(self._flight)
            if len(self._batcher):
                self._land(self._launch(worker, self._batcher.take(), stop, retry=False))

    def _receive_one(self) -> None:
        wait = self._batcher.wait_s()
        timeout = 0.5 if wait is None else min(wait, 0.5)
        if self._flight is not None:
            timeout = min(timeout, _FLIGHT_POLL_S)  # notice the commit soon and ack it
        try:
            inbound = self._inbox.get(timeout=timeout)
        except queue.Empty:
            inbound = None
        if inbound is not None:
            item = classify(inbound, max_bytes=self._s.max_payload_bytes, limits=self._limits,
                            now_us=time.time_ns() // 1000)
            self._m.messages.labels(_kind(item)).inc()
            self._batcher.add(item, sample_count(item))
        self._m.queue_depth.set(self._inbox.qsize())
        self._m.connected.set(1 if self._sub.connected else 0)

    def _launch(self, worker: ThreadPoolExecutor, items: list[Item], stop: threading.Event, *,
                retry: bool) -> _Flight:  # fmt: skip
        return _Flight(items, worker.submit(self._store, items, stop, retry=retry))

    def _store(self, items: Sequence[Item], stop: threading.Event, *, retry: bool) -> tuple[Outcome, float] | None:
        """Writer thread: write one batch, retrying with backoff while the store is unavailable. None: given up
        (stopping), nothing may be acked and the broker redelivers these messages to the next session."""
        started = time.monotonic()
        while True:
            try:
                outcome = self._writer.write(items)
                break
            except StoreUnavailable as exc:
                self._state["db_ok"] = False
                self._m.db_errors.inc()
                delay = self._backoff.next_delay()
                self._log.warning("write_failed", error=str(exc), retry_in_s=round(delay, 2), held=len(items))
                if not retry or stop.wait(delay):
                    return None
        self._state["db_ok"] = True
        self._backoff.reset()
        return outcome, time.monotonic() - started

    def _land(self, flight: _Flight) -> None:
        """Wait for the batch in flight, then ack it in receive order and publish its watermarks."""
        self._flight = None
        done = flight.future.result()
        if done is None:
            return
        outcome, seconds = done
        self._fault.after_commit(outcome)
        self._sub.ack([i.inbound for i in flight.items])
        now_us = time.time_ns() // 1000
        for (gw, stream), seq in sorted(outcome.marks.items()):
            self._sub.publish_watermark(Watermark(gateway_id=gw, stream=stream, seq=seq, ts_us=now_us))
        self._observe(flight.items, outcome, seconds)

    def _observe(self, items: Sequence[Item], outcome: Outcome, seconds: float) -> None:
        m = self._m
        m.batches.inc()
        m.batch_seconds.observe(seconds)
        m.rows.labels("samples").inc(outcome.samples)
        m.rows.labels("events").inc(outcome.events)
        m.conflicts.inc(outcome.conflicts)
        m.gaps.inc(outcome.gaps_opened)
        for reason, n in outcome.dead_letters.items():
            m.dead_letters.labels(reason).inc(n)
        for reason, gateway_id, device_id, topic, detail in outcome.letters:
            self._log.warning("dead_lettered", reason=reason, gateway_id=gateway_id, device_id=device_id,
                              topic=topic, detail=detail)
        sealed = [i.message.gateway_ts_us for i in items
                  if isinstance(i, Accepted) and isinstance(i.message, TelemetryBatch)]
        if sealed:
            m.lag.set(max(0.0, time.time() - max(sealed) / 1e6))


@dataclass(frozen=True, slots=True)
class _Flight:
    """The batch being written on the writer thread, and its result (None: not written, do not ack)."""

    items: list[Item]
    future: Future[tuple[Outcome, float] | None]


def _kind(item: Item) -> str:
    return "bad" if isinstance(item, DeadLetter) else str(item.topic.kind)


@contextmanager
def _refresher(pool: ConnectionPool, interval_s: float, log: Any) -> Iterator[None]:
    """Plain PostgreSQL: refresh samples_1m every ``interval_s`` through the owner's SECURITY DEFINER function
    (on TimescaleDB the continuous aggregate's policy does it and the function does not exist)."""
    done = threading.Event()

    def work() -> None:
        while not done.wait(interval_s):
            try:
                with pool.connection() as conn:
                    conn.autocommit = True
                    try:
                        if conn.execute("SELECT to_regprocedure('refresh_samples_1m()')").fetchone()[0]:  # type: ignore[index]
                            conn.execute("SELECT refresh_samples_1m()")
                    finally:
                        conn.autocommit = False
            except Exception as exc:  # a failed refresh is retried at the next interval
                log.warning("refresh_failed", error=str(exc)[:300])

    thread = threading.Thread(target=work, name="ingest-refresh", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


class _Fault:
    """Test-only: ``kill_before_commit:N`` / ``kill_after_commit:N`` SIGKILL the process at the Nth batch that
    holds numbered records, to prove that nothing is lost or duplicated across a crash (docs/reliability.md, R5/R6)."""

    def __init__(self, point: str, at: int) -> None:
        self._point, self._at, self._seen = point, at, 0

    @classmethod
    def parse(cls, spec: str) -> _Fault:
        if not spec:
            return cls("", 0)
        point, _, n = spec.partition(":")
        if point not in ("kill_before_commit", "kill_after_commit"):
            raise ValueError(f"unknown fault {spec!r}")
        return cls(point, int(n or 1))

    def _hit(self, point: str, outcome: Outcome) -> None:
        if self._point != point or outcome.records == 0:
            return
        self._seen += 1
        if self._seen == self._at:
            os.kill(os.getpid(), signal.SIGKILL)

    @property
    def before_commit(self) -> Callable[[Outcome], None]:
        return lambda outcome: self._hit("kill_before_commit", outcome)

    def after_commit(self, outcome: Outcome) -> None:
        self._hit("kill_after_commit", outcome)
