"""Helpers shared by the ingest integration and fault tests: a publishing client, message builders, a real
``ortel ingest`` process, and counts against what was sent."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

import wire
from ortel_cli.stack import MosquittoServer, PostgresServer, free_port
from tests.support.harness import TEST_PASSWORD, Database, new_broker, prepare_templates
from tests.support.poll import wait_until
from tests.support.procs import Service
from wire import DeviceBirth, Event, EventKind, Kind, MetricDef, TelemetryBatch, topics

T0_US = int(time.time() // 60 * 60 * 1_000_000)  # minute-aligned "now" at import, within every limit


@contextmanager
def _private_dir(prefix: str) -> Iterator[Path]:
    # Outside pytest's basetemp on purpose: every new pytest session resets /tmp/pytest-of-<user> to mode 0700,
    # and a server running as its own user (mosquitto, postgres) then fails to reload or restart with
    # "Permission denied" whenever another session starts meanwhile.
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(name="ingest_broker")
def ingest_broker_fixture() -> Iterator[MosquittoServer]:
    """A private Mosquitto (repo config and ACL, users ingest and ortel-admin), as ``make_broker()``."""
    with _private_dir("ortel-mqtt-") as root:
        server = new_broker(root / "mosquitto")
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(name="restartable_postgres")
def restartable_postgres_fixture() -> Iterator[PostgresServer]:
    """A private PostgreSQL with the migrated template, as ``make_postgres()``, safe to stop and start."""
    with _private_dir("ortel-pg-") as root:
        server = PostgresServer(directory=root / "postgres").start()
        try:
            prepare_templates(server)
            yield server
        finally:
            server.stop("immediate")


class Publisher:
    """An ``ortel-admin`` MQTT v5 client that publishes QoS 1 and checks every PUBACK reason code."""

    def __init__(self, port: int, user: str = "ortel-admin") -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id=f"pub-{free_port()}")
        self._client.username_pw_set(user, TEST_PASSWORD)
        self._failures: list[str] = []
        self._connected = threading.Event()
        self._client.on_connect = lambda c, u, f, rc, p: (not rc.is_failure) and self._connected.set()
        self._client.on_publish = self._on_publish
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        wait_until(self._connected.is_set, timeout=10, what="publisher CONNACK")

    def _on_publish(self, _c: object, _u: object, mid: int, rc: object, _p: object) -> None:
        if rc.is_failure:  # type: ignore[attr-defined]
            self._failures.append(f"mid {mid}: {rc}")

    def raw(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"no PUBACK for {topic}"
        assert not self._failures, self._failures

    def send(self, message: wire.Message, *, retain: bool = False) -> None:
        self.raw(topic_of(message), wire.encode(message), retain=retain)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


@contextmanager
def publisher(port: int) -> Iterator[Publisher]:
    pub = Publisher(port)
    try:
        yield pub
    finally:
        pub.close()


def topic_of(message: wire.Message) -> str:
    if isinstance(message, wire.GatewayState):
        return topics.gateway_state(message.gateway_id)
    if isinstance(message, wire.ProcedureEvent):
        return topics.procedure(message.gateway_id)
    kind = {DeviceBirth: Kind.BIRTH, wire.DeviceStatus: Kind.STATUS, TelemetryBatch: Kind.TELEMETRY,
            Event: Kind.EVENT}[type(message)]
    return topics.device(message.gateway_id, message.device_id, kind)  # type: ignore[union-attr]


def birth(gw: str, device: str) -> DeviceBirth:
    return DeviceBirth(gateway_id=gw, device_id=device, ts_us=T0_US, device_type="esu", firmware="1.0",
                       metrics=(MetricDef(name="power_w", unit="W"), MetricDef(name="temp_c", unit="Cel")))


def batch(gw: str, device: str, seq: int, *, rows: int = 10, value: float | None = None) -> TelemetryBatch:
    """``rows`` samples of two metrics; timestamps derived from seq so every batch has its own keys."""
    base = T0_US - 3_600_000_000 + seq * 1_000_000
    ts = tuple(base + i * (1_000_000 // rows) for i in range(rows))
    power = tuple(float(seq * 1000 + i) if value is None else value for i in range(rows))
    return TelemetryBatch(gateway_id=gw, device_id=device, seq=seq, ts_us=ts, gateway_ts_us=T0_US,
                          metrics={"power_w": power, "temp_c": tuple(36.0 + i / 100 for i in range(rows))})


def event(gw: str, device: str, seq: int, kind: EventKind = EventKind.INFO, **kw: object) -> Event:
    return Event(gateway_id=gw, device_id=device, seq=seq, ts_us=T0_US - 3_600_000_000 + seq * 1_000_000,
                 kind=kind, **kw)  # type: ignore[arg-type]


@dataclass
class IngestProcess:
    service: Service
    ops_port: int

    def health(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}/healthz", timeout=2) as resp:
                return orjson.loads(resp.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:  # 503: not healthy, the body says why
            return orjson.loads(exc.read())  # type: ignore[no-any-return]
        except OSError:
            return {}

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            assert self.service.running, self.service.output()[-3000:]
            return bool(self.health().get("ok"))

        wait_until(ready, timeout=timeout, what="ingest /healthz ok")

    def metric(self, name: str) -> float:
        """Sum of every sample of ``name`` (a counter's ``_total`` included) on /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                key = line.split(" ")[0].split("{")[0]
                if key in (name, f"{name}_total"):
                    total += float(line.rsplit(" ", 1)[1])
        return total


def ingest_process(
    tmp_path: Path, *, dsn: str, mqtt_port: int, client_id: str, group: str | None = None, **env: str
) -> IngestProcess:
    # Each test gets its own share group unless it shares one on purpose: on the session-wide broker, the
    # persistent session of an earlier test's (stopped) ingest would otherwise keep receiving its share.
    group = group or f"g-{client_id}"
    ops_port = free_port()
    base = {
        "ORTEL_INGEST_DSN": dsn,
        "ORTEL_INGEST_MQTT_PORT": str(mqtt_port),
        "ORTEL_INGEST_MQTT_PASSWORD": TEST_PASSWORD,
        "ORTEL_INGEST_CLIENT_ID": client_id,
        "ORTEL_INGEST_GROUP": group,
        "ORTEL_INGEST_OPS_PORT": str(ops_port),
        "ORTEL_INGEST_BATCH_MAX_AGE_S": "0.05",
        "ORTEL_INGEST_LOG_LEVEL": "info",
    }
    log = tmp_path / f"{client_id}.log"
    return IngestProcess(Service(["ingest"], {**base, **env}, log), ops_port)


@contextmanager
def running(proc: IngestProcess) -> Iterator[IngestProcess]:
    proc.service.start()
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.service.stop()


def stored_seqs(db: Database, device: str) -> list[int]:
    """Seqs of ``device`` present in samples, one entry per (seq, metric, ts) row."""
    return [int(r[0]) for r in db.query("SELECT seq FROM samples WHERE device_id = %s ORDER BY seq", (device,))]


def assert_exactly_once(db: Database, device: str, seqs: range, *, rows_per_batch: int) -> None:
    """Every seq sent is stored with all its rows, nothing twice (the unique key makes duplicates impossible,
    so also count rows against distinct keys to prove it)."""
    rows = db.query(
        "SELECT seq, count(*), count(DISTINCT (metric, ts)) FROM samples WHERE device_id = %s GROUP BY seq",
        (device,),
    )
    got = {int(seq): (int(n), int(d)) for seq, n, d in rows}
    missing = sorted(set(seqs) - set(got))
    assert not missing, f"missing seqs {missing[:20]} ({len(missing)})"
    assert set(got) == set(seqs), f"unexpected seqs {sorted(set(got) - set(seqs))[:20]}"
    bad = {s: v for s, v in got.items() if v != (rows_per_batch, rows_per_batch)}
    assert not bad, f"wrong row counts {dict(list(bad.items())[:10])}"


def watermark_of(db: Database, gw: str, stream: str) -> int | None:
    value = db.scalar("SELECT seq FROM watermarks WHERE gateway_id = %s AND stream = %s", (gw, stream))
    return None if value is None else int(value)  # type: ignore[call-overload]
