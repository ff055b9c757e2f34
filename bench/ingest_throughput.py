"""Ingest throughput against an idempotent COPY ceiling, on private servers started for the run.

    .venv/bin/python bench/ingest_throughput.py [--messages 2000] [--rows 10] [--metrics 5] [--devices 50]

Three figures, same machine, same run:
- ``decode``: wire.decode + binary COPY row shaping only (the CPU hot path), samples/s;
- ``ceiling``: the same samples COPYed into a staging table and ``INSERT ... ON CONFLICT DO NOTHING``, one
  transaction per batch of messages, straight from Python (no MQTT, no ledger): what the database allows;
- ``ingest``: ``ortel ingest`` as a real process, fed over MQTT (QoS 1) by a pre-encoded publisher, from the
  first publish until every stream's watermark covers its last seq: samples/s end to end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

import wire
from ingest.migrate import migrate
from ingest.records import STAGING_DDL
from ingest.rows import samples_copy
from ortel_cli.stack import MosquittoServer, PostgresServer, free_port
from wire import DeviceBirth, TelemetryBatch, topics

PASSWORD = "bench-password"
REPO = Path(__file__).resolve().parents[1]


def make_payloads(*, messages: int, rows: int, metrics: int, devices: int) -> list[tuple[str, bytes]]:
    now = time.time_ns() // 1000 - 3_600_000_000
    names = [f"m{i}" for i in range(metrics)]
    out = []
    for i in range(messages):
        dev, seq = f"dev-{i % devices}", i // devices + 1
        ts = tuple(now + seq * 1_000_000 + r * 1000 for r in range(rows))
        values = {n: tuple(float(seq + r + k) for r in range(rows)) for k, n in enumerate(names)}
        batch = TelemetryBatch(gateway_id="gw-bench", device_id=dev, seq=seq, ts_us=ts, metrics=values,
                               gateway_ts_us=now)
        out.append((topics.device("gw-bench", dev, wire.Kind.TELEMETRY), wire.encode(batch)))
    return out


def bench_decode(payloads: list[tuple[str, bytes]], per_batch: int) -> float:
    start, n = time.perf_counter(), 0
    for i in range(0, len(payloads), per_batch):
        decoded = [wire.decode(t, p)[1] for t, p in payloads[i : i + per_batch]]
        n += samples_copy(decoded).rows  # type: ignore[arg-type]
    return n / (time.perf_counter() - start)


def bench_ceiling(dsn: str, payloads: list[tuple[str, bytes]], per_batch: int) -> float:
    batches = [wire.decode(t, p)[1] for t, p in payloads]
    chunks = [samples_copy(batches[i : i + per_batch]) for i in range(0, len(batches), per_batch)]  # type: ignore[arg-type]
    insert = ("INSERT INTO samples (device_id, metric, ts, value, seq) SELECT k.device_id, k.metric,"
              " timestamptz 'epoch' + s.ts_us * interval '1 microsecond', s.value, s.seq"
              " FROM ingest_stage_samples s JOIN unnest(%s::text[], %s::text[]) WITH ORDINALITY"
              " AS k(device_id, metric, series) ON k.series = s.series ON CONFLICT DO NOTHING")
    with psycopg.connect(dsn) as conn:
        for ddl in STAGING_DDL:
            conn.execute(ddl)  # type: ignore[arg-type]
        conn.commit()
        start, n = time.perf_counter(), 0
        for chunk in chunks:
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy("COPY ingest_stage_samples FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(chunk.data)
                cur.execute(insert, (list(chunk.devices), list(chunk.metrics)))
                cur.execute("TRUNCATE ingest_stage_samples")
            n += chunk.rows
        elapsed = time.perf_counter() - start
        conn.execute("TRUNCATE samples")
        conn.commit()
    return n / elapsed


def bench_ingest(pg: PostgresServer, db: str, broker: MosquittoServer, payloads: list[tuple[str, bytes]], *,
                 devices: int, workdir: Path) -> float:
    ops = free_port()
    env = {**os.environ, "ORTEL_INGEST_DSN": pg.dsn(db, user="ortel_writer"),
           "ORTEL_INGEST_MQTT_PORT": str(broker.port), "ORTEL_INGEST_MQTT_PASSWORD": PASSWORD,
           "ORTEL_INGEST_CLIENT_ID": "ingest-bench", "ORTEL_INGEST_OPS_PORT": str(ops),
           "ORTEL_INGEST_LOG_LEVEL": "warning"}
    log = open(workdir / "ingest.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen([sys.executable, "-m", "ortel_cli", "ingest"], env=env, stdout=log, stderr=log,
                            cwd=REPO)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="bench-pub")
    pub.username_pw_set("ortel-admin", PASSWORD)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        _wait_health(ops)
        last_seq = {}
        for d in range(devices):
            birth = DeviceBirth(gateway_id="gw-bench", device_id=f"dev-{d}", ts_us=time.time_ns() // 1000,
                                device_type="bench")
            pub.publish(topics.device("gw-bench", f"dev-{d}", wire.Kind.BIRTH), wire.encode(birth), qos=1,
                        retain=True).wait_for_publish(10)
        _wait(lambda: _scalar(pg, db, "SELECT count(*) FROM devices") == devices, 30)
        for _topic, p in payloads:
            d = orjson.loads(p)
            last_seq[d["device_id"]] = max(last_seq.get(d["device_id"], 0), d["seq"])
        start = time.perf_counter()
        for t, p in payloads:
            pub.publish(t, p, qos=1)
        goal = sum(last_seq.values())
        _wait(lambda: (_scalar(pg, db, "SELECT coalesce(sum(seq), 0) FROM watermarks") or 0) >= goal, 300)
        elapsed = time.perf_counter() - start
        return int(_scalar(pg, db, "SELECT count(*) FROM samples") or 0) / elapsed
    finally:
        pub.loop_stop()
        pub.disconnect()
        proc.terminate()
        proc.wait(20)
        log.close()


def _wait_health(port: int) -> None:
    import urllib.request

    def ok() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return bool(orjson.loads(r.read())["ok"])
        except OSError:
            return False

    _wait(ok, 30)


def _wait(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(0.05)  # poll interval of a benchmark driver


def _scalar(pg: PostgresServer, db: str, sql: str) -> object:
    with psycopg.connect(pg.dsn(db)) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=10, help="timestamps per TelemetryBatch")
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--per-batch", type=int, default=500, help="messages per ceiling transaction")
    args = ap.parse_args(argv)
    payloads = make_payloads(messages=args.messages, rows=args.rows, metrics=args.metrics, devices=args.devices)
    with tempfile.TemporaryDirectory(prefix="ortel-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        pg = PostgresServer(directory=root / "pg").start()
        broker = MosquittoServer(directory=root / "mqtt", users={"ingest": PASSWORD, "ortel-admin": PASSWORD})
        try:
            broker.start()
            with psycopg.connect(pg.dsn(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            migrate(pg.dsn("bench"), timescale="auto")
            result = {
                "samples": float(args.messages * args.rows * args.metrics),
                "decode_samples_per_s": bench_decode(payloads, args.per_batch),
                "ceiling_samples_per_s": bench_ceiling(pg.dsn("bench"), payloads, args.per_batch),
                "ingest_samples_per_s": bench_ingest(pg, "bench", broker, payloads, devices=args.devices,
                                                     workdir=root),
            }
        finally:
            broker.stop()
            pg.stop("immediate")
    result["ingest_vs_ceiling"] = result["ingest_samples_per_s"] / result["ceiling_samples_per_s"]
    for key, value in result.items():
        print(f"{key:>24}: {value:,.2f}")
    return result


if __name__ == "__main__":
    main()
