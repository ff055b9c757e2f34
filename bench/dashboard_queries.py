"""Dashboard query latency: a 4-hour procedure timeline (20 devices at 10 Hz) and a 30-day device history.

Targets (plain PostgreSQL): timeline data <= 300 ms median, 30-day history <= 500 ms median. Data is made with
``generate_series`` in SQL (seconds, not minutes), the 1-minute aggregate ``samples_1m`` is refreshed the way
ingest does, and the queries are the dashboard's own (``dashboard.db``), run as the ``ortel_reader`` role.

    python bench/dashboard_queries.py [--runs 7] [--devices 20] [--hz 10] [--hours 4] [--json out.json]

Inside ``ortel bench`` the same measurement runs as ``run(ctx)`` on the bench stack's database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from dashboard import db  # noqa: E402 - after the path set-up above (bench/ is a directory of scripts)
from dashboard.timeline import pair_activations, timeline  # noqa: E402

CASE = "BENCH-CASE-1"
HISTORY_DEVICE = "hist-000"
METRICS = ("power_w", "impedance_ohm")
TARGET_TIMELINE_MS = 300.0
TARGET_HISTORY_MS = 500.0


@dataclass(frozen=True)
class Sizes:
    devices: int = 20
    hz: float = 10.0
    hours: float = 4.0
    history_days: int = 30
    history_step_s: float = 10.0  # raw density of the 30-day device; samples_1m has 1 row/minute regardless


def generate(owner_dsn: str, sizes: Sizes, *, now: datetime) -> dict[str, int]:
    """Fill the database: one room, ``devices`` devices sampled at ``hz`` for a ``hours``-long procedure
    ending now, activations, alarms, the received ledger, and one device with ``history_days`` of history."""
    start = now - timedelta(hours=sizes.hours)
    metrics_json = json.dumps([{"name": m, "unit": "W" if m == "power_w" else "Ohm"} for m in METRICS])
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO gateways (gateway_id, room, state) VALUES ('gw-bench', 'OR-B', 'online')")
        conn.execute("""
            INSERT INTO devices (device_id, gateway_id, device_type, room, metrics, last_seen, last_sample_at)
            SELECT 'dev-' || lpad(i::text, 3, '0'), 'gw-bench', 'esu', 'OR-B', %s::jsonb, %s, %s
            FROM generate_series(1, %s) i""", (metrics_json, now, now, sizes.devices))
        conn.execute("INSERT INTO procedures VALUES (%s, 'gw-bench', 'OR-B', 'bench case', %s, %s)",
                     (CASE, start, now))
        for k, phase in enumerate(("preparation", "access", "dissection", "closure")):
            a = start + timedelta(hours=sizes.hours * k / 4)
            conn.execute("INSERT INTO procedure_phases VALUES (%s, %s, %s, %s)",
                         (CASE, phase, a, a + timedelta(hours=sizes.hours / 4)))
        step = timedelta(seconds=1 / sizes.hz)
        # one numbered batch per second per device: seq = seconds since start + 1
        conn.execute("""
            INSERT INTO samples (device_id, metric, ts, value, seq)
            SELECT d.device_id, m.metric, t, 40 + 30 * sin(extract(epoch FROM t) / 7 + d.k),
                   floor(extract(epoch FROM t - %(a)s::timestamptz))::bigint + 1
            FROM (SELECT device_id, row_number() OVER () AS k FROM devices WHERE gateway_id = 'gw-bench') d,
                 unnest(%(m)s::text[]) m(metric),
                 generate_series(%(a)s::timestamptz, %(b)s::timestamptz - %(s)s::interval, %(s)s::interval) t
            """, {"a": start, "b": now, "s": step, "m": list(METRICS)})
        conn.execute("""
            INSERT INTO received (gateway_id, stream, seq, kind, n_samples, received_at)
            SELECT 'gw-bench', device_id, s, 'telemetry', %(n)s, %(a)s::timestamptz + s * interval '1 second'
            FROM devices, generate_series(1, %(secs)s) s WHERE gateway_id = 'gw-bench'""",
                     {"n": int(sizes.hz * len(METRICS)), "a": start, "secs": int(sizes.hours * 3600)})
        conn.execute("""
            INSERT INTO events (device_id, seq, ts, kind, code)
            SELECT device_id, 10000000 + 2 * n + k, %(a)s::timestamptz + n * interval '97 seconds'
                   + k * interval '6 seconds', CASE k WHEN 0 THEN 'activation_start' ELSE 'activation_stop' END,
                   CASE n %% 3 WHEN 0 THEN 'cut' ELSE 'coag' END
            FROM devices, generate_series(0, %(acts)s) n, generate_series(0, 1) k
            WHERE gateway_id = 'gw-bench'""", {"a": start, "acts": int(sizes.hours * 3600 / 97) - 1})
        conn.execute("""
            INSERT INTO alarms (device_id, code, severity, raised_at, cleared_at)
            SELECT device_id, 'A' || n, 'medium', %(a)s::timestamptz + n * interval '17 minutes',
                   %(a)s::timestamptz + n * interval '17 minutes' + interval '40 seconds'
            FROM devices, generate_series(0, 10) n WHERE gateway_id = 'gw-bench'""", {"a": start})
        # the 30-day device: sparse raw rows, but the same samples_1m density as a 10 Hz device
        conn.execute("""
            INSERT INTO devices (device_id, gateway_id, device_type, room, metrics)
            VALUES (%s, 'gw-bench', 'insufflator', 'OR-B', %s::jsonb)""", (HISTORY_DEVICE, metrics_json))
        conn.execute("""
            INSERT INTO samples (device_id, metric, ts, value, seq)
            SELECT %(d)s, m.metric, t, 12 + sin(extract(epoch FROM t) / 600), 1
            FROM unnest(%(m)s::text[]) m(metric),
                 generate_series(%(a)s::timestamptz, %(b)s::timestamptz, %(s)s::interval) t""",
                     {"d": HISTORY_DEVICE, "m": list(METRICS), "a": now - timedelta(days=sizes.history_days),
                      "b": now, "s": timedelta(seconds=sizes.history_step_s)})
        _refresh_samples_1m(conn)
        conn.execute("ANALYZE")
        counts = {
            "samples": conn.execute("SELECT count(*) FROM samples").fetchone()[0],  # type: ignore[index]
            "samples_1m": conn.execute("SELECT count(*) FROM samples_1m").fetchone()[0],  # type: ignore[index]
            "received": conn.execute("SELECT count(*) FROM received").fetchone()[0],  # type: ignore[index]
        }
    return {k: int(v) for k, v in counts.items()}


def _refresh_samples_1m(conn: psycopg.Connection) -> None:
    """What ingest's periodic refresh does (or, on a schema without the aggregate, create it as a table)."""
    kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('samples_1m')").fetchone()
    if kind is None:
        conn.execute("""
            CREATE TABLE samples_1m AS SELECT device_id, metric, date_bin('1 minute', ts, 'epoch') AS bucket,
                count(*) AS n, min(value) AS min_value, max(value) AS max_value, avg(value) AS avg_value
            FROM samples GROUP BY 1, 2, 3""")
        conn.execute("ALTER TABLE samples_1m ADD PRIMARY KEY (device_id, metric, bucket)")
        conn.execute("GRANT SELECT ON samples_1m TO ortel_reader")
    elif kind[0] == "m":
        conn.execute("REFRESH MATERIALIZED VIEW samples_1m")
    else:
        conn.execute("CALL refresh_continuous_aggregate('samples_1m', NULL, NULL)")


def timeline_data(conn: psycopg.Connection, *, plotted: int, now: datetime) -> dict[str, Any]:
    """Exactly what the procedure page's callback queries."""
    case = db.procedure(conn, CASE)
    assert case is not None
    end = case.ended_at or now
    lanes = db.case_devices(conn, case)
    ids = [d for d, _ in lanes]
    return {
        "case": case, "lanes": lanes,
        "phases": db.phases(conn, CASE),
        "segments": pair_activations(db.activation_events(conn, ids, case.started_at, end), end=end),
        "alarms": db.alarms_between(conn, ids, case.started_at, end),
        "series": db.series(conn, ids[:plotted], case.started_at, end, points=1200),
        "complete": db.case_completeness(conn, ids, case.started_at, end),
    }


def history_data(conn: psycopg.Connection, *, now: datetime, days: int) -> dict[str, Any]:
    """Exactly what the device page's callback queries for a 30-day range."""
    a = now - timedelta(days=days)
    return {
        "device": db.device(conn, HISTORY_DEVICE),
        "series": db.series(conn, [HISTORY_DEVICE], a, now, points=1200),
        "events": db.device_events(conn, HISTORY_DEVICE, a, now),
        "gaps": db.gaps(conn, HISTORY_DEVICE),
    }


def _time_ms(fn: Callable[[], object], runs: int) -> tuple[list[float], object]:
    out: list[float] = []
    result: object = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out, result


def measure(reader_dsn: str, sizes: Sizes, *, runs: int, now: datetime) -> dict[str, Any]:
    with psycopg.connect(reader_dsn, autocommit=True) as conn:
        db.prepare_session(conn)  # what the dashboard's pool does for every connection
        timeline_data(conn, plotted=sizes.devices, now=now)  # warm the cache once, as a live server would be
        all_ms, data = _time_ms(lambda: timeline_data(conn, plotted=sizes.devices, now=now), runs)
        four_ms, _ = _time_ms(lambda: timeline_data(conn, plotted=4, now=now), runs)
        history_data(conn, now=now, days=sizes.history_days)
        hist_ms, hist = _time_ms(lambda: history_data(conn, now=now, days=sizes.history_days), runs)
    d: dict[str, Any] = data  # type: ignore[assignment]
    fig_ms, _ = _time_ms(lambda: timeline(d["case"], phases=d["phases"], lanes=d["lanes"], segments=d["segments"],
                                          alarms=d["alarms"], series=d["series"][:8], now=now), max(3, runs // 2))
    points = sum(len(s.t) for s in d["series"])
    return {
        "timeline_all_devices_ms": all_ms, "timeline_4_plotted_ms": four_ms, "history_30d_ms": hist_ms,
        "timeline_figure_ms": fig_ms, "timeline_points": points,
        "history_points": sum(len(s.t) for s in hist["series"]),  # type: ignore[index]
    }


def run(ctx: Any) -> list[Any]:
    """``ortel bench`` entry: same measurement on the bench stack, metrics in ms."""
    from bench.results import Metric

    sizes = Sizes() if not ctx.quick else Sizes(hours=1.0)
    with ctx.stack.database() as bench_db:
        now = datetime.now(UTC).replace(microsecond=0)
        ctx.status("dashboard: generating a procedure and a 30-day history")
        counts = generate(bench_db.dsn(), sizes, now=now)
        ctx.status("dashboard: timing the queries")
        got = measure(bench_db.reader_dsn, sizes, runs=max(5, ctx.runs), now=now)
        ctx.advance()
    note = (f"{sizes.devices} devices x {len(METRICS)} metrics at {sizes.hz:g} Hz for {sizes.hours:g} h "
            f"({counts['samples']:,} samples, {counts['samples_1m']:,} samples_1m rows), ortel_reader role")
    return [
        Metric("dashboard", "timeline_query", "ms", tuple(got["timeline_all_devices_ms"]),
               note=note + f"; all devices plotted; target <= {TARGET_TIMELINE_MS:g} ms"),
        Metric("dashboard", "timeline_query_4_plotted", "ms", tuple(got["timeline_4_plotted_ms"]),
               note="the page's default: lanes for all devices, metric rows for 4"),
        Metric("dashboard", "history_30d_query", "ms", tuple(got["history_30d_ms"]),
               note=f"one device, 30 days, from samples_1m; target <= {TARGET_HISTORY_MS:g} ms"),
        Metric("dashboard", "timeline_figure_build", "ms", tuple(got["timeline_figure_ms"]),
               note="pure figure construction for 8 metric rows"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    sizes = Sizes(devices=args.devices, hz=args.hz, hours=args.hours)

    from ingest.migrate import migrate
    from ortel_cli.stack import PostgresServer

    with tempfile.TemporaryDirectory(prefix="ortel-bench-dash-") as tmp:
        Path(tmp).chmod(0o755)
        with PostgresServer(directory=Path(tmp) / "pg").running() as pg:
            with psycopg.connect(pg.dsn(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            migrate(pg.dsn("bench"), timescale="off")
            now = datetime.now(UTC).replace(microsecond=0)
            t0 = time.perf_counter()
            counts = generate(pg.dsn("bench"), sizes, now=now)
            gen_s = time.perf_counter() - t0
            got = measure(pg.dsn("bench", user="ortel_reader"), sizes, runs=args.runs, now=now)
    summary = {k: round(statistics.median(v), 1) for k, v in got.items() if isinstance(v, list)}
    report = {"sizes": sizes.__dict__, "rows": counts, "generate_s": round(gen_s, 1), "median_ms": summary,
              "points": {"timeline": got["timeline_points"], "history": got["history_points"]},
              "runs_ms": {k: [round(x, 1) for x in v] for k, v in got.items() if isinstance(v, list)},
              "targets_met": {"timeline": summary["timeline_all_devices_ms"] <= TARGET_TIMELINE_MS,
                              "history_30d": summary["history_30d_ms"] <= TARGET_HISTORY_MS}}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if all(report["targets_met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
