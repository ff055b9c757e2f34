"""Every query of the dashboard: typed functions over a psycopg connection, returning ``dashboard.rows``.

The dashboard connects as ``ortel_reader`` (SELECT everywhere; INSERT on audit_log; UPDATE of
alarms.acked_at/acked_by only). All SQL uses bound parameters. Long time ranges are aggregated in SQL (the
``samples_1m`` 1-minute aggregate when it exists, ``date_bin`` buckets over ``samples`` otherwise) so a plot
never pulls more rows than it has pixels.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from dashboard.downsample import choose_bucket_s
from dashboard.rows import (
    AlarmRow,
    DeadLetterRow,
    DeviceFacts,
    DeviceRow,
    EventRow,
    GapRow,
    GatewayRow,
    IngestRate,
    InventoryRow,
    MetricDef,
    PhaseRow,
    ProcedureRow,
    RoomDevice,
    Series,
)

__all__ = [
    "ack_alarm", "activation_events", "alarms", "alarms_between", "audit", "case_completeness", "case_devices",
    "db_now", "dead_letter_reasons", "dead_letters", "device", "device_events", "gaps", "gateways",
    "has_samples_1m", "ingest_rate", "inventory", "login_failures", "phases", "prepare_session", "procedure",
    "procedure_rooms",
    "procedures", "room_devices", "series", "system_totals",
]

Conn = psycopg.Connection
# A gap is data lost while it is open, or for good when closed by the edge dropping it; a gap closed because
# the records arrived after all is no loss.
_LOST = "(g.closed_at IS NULL OR g.reason <> 'missing')"
_SEVERITY_RANK = "CASE a.severity WHEN 'high' THEN 0 WHEN 'medium' THEN 1 ELSE 2 END"
_US = "(extract(epoch FROM {}) * 1000000)::int8"  # times as integer microseconds: cheap to turn into numpy

_FACTS = """coalesce(g.state, 'unknown'), d.connected, d.last_seen, d.last_sample_at, d.heartbeat_s,
    (SELECT count(*) FROM alarms a WHERE a.device_id = d.device_id AND a.cleared_at IS NULL)"""


def _facts(row: Sequence[Any]) -> DeviceFacts:
    return DeviceFacts(str(row[0]), bool(row[1]), row[2], row[3], float(row[4]), int(row[5]))


def _one(conn: Conn, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
    """The single value of a one-row query."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def prepare_session(conn: Conn) -> None:
    """Per-connection settings of the dashboard: UTC everywhere; no JIT (it costs tens of ms to compile and
    these queries are short index range scans that never win it back)."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET jit = off")


def db_now(conn: Conn) -> datetime:
    now: datetime = _one(conn, "SELECT now()")
    return now


def has_samples_1m(conn: Conn) -> bool:
    return bool(_one(conn, "SELECT to_regclass('samples_1m') IS NOT NULL"))


# ------------------------------------------------------------------------------------------ overview, devices


def room_devices(conn: Conn) -> list[RoomDevice]:
    """Every device with its liveness facts and its room's running procedure and phase."""
    rows = conn.execute(f"""
        SELECT coalesce(d.room, g.room, '—'), d.gateway_id, d.device_id, d.device_type, d.model, {_FACTS},
               p.case_id, p.procedure_type, p.started_at,
               (SELECT ph.phase FROM procedure_phases ph WHERE ph.case_id = p.case_id AND ph.ended_at IS NULL
                ORDER BY ph.started_at DESC LIMIT 1),
               (SELECT a.code FROM alarms a WHERE a.device_id = d.device_id AND a.cleared_at IS NULL
                ORDER BY {_SEVERITY_RANK}, a.raised_at DESC LIMIT 1)
        FROM devices d LEFT JOIN gateways g USING (gateway_id)
        LEFT JOIN LATERAL (
            SELECT case_id, procedure_type, started_at FROM procedures pr
            WHERE pr.room = coalesce(d.room, g.room) AND pr.ended_at IS NULL
            ORDER BY pr.started_at DESC LIMIT 1) p ON true
        ORDER BY 1, d.device_type, d.device_id""").fetchall()
    return [
        RoomDevice(r[0], r[1], r[2], r[3], r[4], _facts(r[5:11]), r[11], r[12], r[14], r[13], r[15]) for r in rows
    ]


def inventory(conn: Conn) -> list[InventoryRow]:
    """The device inventory with this week's utilisation and all-time data completeness."""
    minutes_src = (
        "SELECT device_id, bucket AS m FROM samples_1m, week WHERE bucket >= week.start"
        if has_samples_1m(conn)
        else "SELECT DISTINCT device_id, date_bin('1 minute', ts, week.start) FROM samples, week"
        " WHERE ts >= week.start"
    )
    rows = conn.execute(f"""
        WITH week AS (SELECT date_trunc('week', now()) AS start),
        acts AS (
            SELECT s.device_id, s.ts AS t0, coalesce(e.ts, now()) AS t1 FROM events s CROSS JOIN week
            LEFT JOIN LATERAL (SELECT ts FROM events e WHERE e.device_id = s.device_id
                AND e.kind = 'activation_stop' AND e.ts >= s.ts ORDER BY e.ts LIMIT 1) e ON true
            WHERE s.kind = 'activation_start' AND s.ts >= week.start),
        active AS (
            SELECT device_id, count(DISTINCT m) AS minutes FROM (
                {minutes_src}
                UNION ALL
                SELECT device_id, generate_series(date_bin('1 minute', t0, week.start), t1, '1 minute')
                FROM acts, week) x
            GROUP BY device_id),
        ledger AS (  -- index probes and the (small) gap table: no scan of the ledger itself
            SELECT d.device_id,
                (SELECT min(seq) FROM received r WHERE r.gateway_id = d.gateway_id AND r.stream = d.device_id) AS lo,
                (SELECT max(seq) FROM received r WHERE r.gateway_id = d.gateway_id AND r.stream = d.device_id) AS hi,
                (SELECT coalesce(sum(g.to_seq - g.from_seq + 1), 0) FROM seq_gaps g
                 WHERE g.gateway_id = d.gateway_id AND g.stream = d.device_id AND {_LOST}) AS lost
            FROM devices d)
        SELECT d.device_id, d.device_type, d.manufacturer, d.model, d.serial, d.firmware,
               coalesce(d.room, g.room, '—'), {_FACTS},
               a.minutes / greatest(1.0, extract(epoch FROM now() - week.start) / 60.0),
               1.0 - l.lost::float8 / nullif(l.hi - l.lo + 1, 0)
        FROM devices d CROSS JOIN week LEFT JOIN gateways g USING (gateway_id)
        LEFT JOIN active a ON a.device_id = d.device_id
        LEFT JOIN ledger l ON l.device_id = d.device_id
        ORDER BY 7, d.device_type, d.device_id""").fetchall()
    return [
        InventoryRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], facts=_facts(r[7:13]),
                     utilisation=None if r[13] is None else min(1.0, float(r[13])),
                     completeness=None if r[14] is None else float(r[14]))
        for r in rows
    ]


def device(conn: Conn, device_id: str) -> DeviceRow | None:
    r = conn.execute(f"""
        SELECT d.device_id, d.gateway_id, d.device_type, d.manufacturer, d.model, d.serial, d.firmware, d.udi,
               coalesce(d.room, g.room, '—'), d.metrics, {_FACTS}, d.birth_at
        FROM devices d LEFT JOIN gateways g USING (gateway_id) WHERE d.device_id = %s""", (device_id,)).fetchone()
    if r is None:
        return None
    metrics = tuple(
        MetricDef(m["name"], m.get("unit", ""), m.get("low"), m.get("high")) for m in (r[9] or []) if "name" in m
    )
    return DeviceRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], metrics=metrics, facts=_facts(r[10:16]),
                     birth_at=r[16])


def device_events(conn: Conn, device_id: str, start: datetime, end: datetime, limit: int = 500) -> list[EventRow]:
    rows = conn.execute(
        "SELECT device_id, seq, ts, kind, code, severity, text, case_id FROM events"
        " WHERE device_id = %s AND ts >= %s AND ts < %s ORDER BY ts DESC LIMIT %s",
        (device_id, start, end, limit)).fetchall()
    return [EventRow(*r) for r in rows]


# A "missing" gap filled this soon was records arriving out of order (live data overtaking a replayed backlog,
# two ingest processes committing side by side), not loss: listed apart so real gaps stand out.
BRIEF_GAP_S = 10.0
_BRIEF = "reason = 'missing' AND closed_at IS NOT NULL AND closed_at - detected_at < make_interval(secs => %(b)s)"


def gaps(conn: Conn, stream: str | None = None, *, open_only: bool = False, limit: int = 200,
         hide_brief: bool = False) -> list[GapRow]:
    rows = conn.execute(
        "SELECT gateway_id, stream, from_seq, to_seq, detected_at, closed_at, reason FROM seq_gaps"
        " WHERE (%(s)s::text IS NULL OR stream = %(s)s) AND (NOT %(o)s OR closed_at IS NULL)"
        f" AND NOT (%(h)s AND {_BRIEF})"
        " ORDER BY detected_at DESC LIMIT %(n)s",
        {"s": stream, "o": open_only, "n": limit, "h": hide_brief, "b": BRIEF_GAP_S}).fetchall()
    return [GapRow(*r) for r in rows]


def brief_gaps(conn: Conn, stream: str) -> int:
    """How many of ``stream``'s gaps were only records arriving out of order (filled within BRIEF_GAP_S)."""
    row = conn.execute(f"SELECT count(*) FROM seq_gaps WHERE stream = %(s)s AND {_BRIEF}",
                       {"s": stream, "b": BRIEF_GAP_S}).fetchone()
    return int(row[0]) if row else 0


# ------------------------------------------------------------------------------------------------ time series


def series(
    conn: Conn, device_ids: Sequence[str], start: datetime, end: datetime, *, points: int = 1000,
    metrics: Sequence[str] | None = None,
) -> list[Series]:
    """Metrics of ``device_ids`` over [start, end): raw when few enough, else min/avg/max per bucket."""
    have_1m = has_samples_1m(conn)
    bucket_s = choose_bucket_s((end - start).total_seconds(), points, n_devices=len(device_ids), have_1m=have_1m)
    units = {(r[0], r[1]): r[2] for r in conn.execute(
        "SELECT d.device_id, x->>'name', coalesce(x->>'unit', '') FROM devices d, jsonb_array_elements(d.metrics) x"
        " WHERE d.device_id = ANY(%s)", (list(device_ids),))}
    # Name the metrics (from the births) so every scan is an index range on (device_id, metric, ts).
    names = list(metrics) if metrics else sorted({m for _, m in units}) or None
    params = {"d": list(device_ids), "m": names, "a": start, "b": end, "w": timedelta(seconds=bucket_s)}
    only = "device_id = ANY(%(d)s) AND (%(m)s::text[] IS NULL OR metric = ANY(%(m)s))"
    if bucket_s == 0:
        sql = f"""SELECT device_id, metric, {_US.format("ts")}, value, NULL::float8, NULL::float8 FROM samples
                  WHERE {only} AND ts >= %(a)s AND ts < %(b)s ORDER BY 1, 2, 3"""
    elif bucket_s >= 60 and have_1m:
        # The aggregate is refreshed periodically: take whole minutes from it up to its newest bucket (which
        # may be partial) and everything from that bucket on from raw samples, then merge on the bucket grid.
        newest = conn.execute(
            "SELECT max(bucket) FROM samples_1m WHERE device_id = ANY(%s) AND bucket >= %s AND bucket < %s",
            (params["d"], start, end)).fetchone()[0]  # type: ignore[index]
        params["split"] = newest or start
        sql = f"""
            WITH parts AS (
                SELECT device_id, metric, date_bin(%(w)s, bucket, %(a)s) AS t, n, min_value AS lo,
                       max_value AS hi, avg_value * n AS total
                FROM samples_1m WHERE {only} AND bucket >= %(a)s AND bucket < %(split)s
                UNION ALL
                SELECT device_id, metric, date_bin(%(w)s, ts, %(a)s), 1, value, value, value
                FROM samples WHERE {only} AND ts >= %(split)s AND ts < %(b)s)
            SELECT device_id, metric, {_US.format("t")}, sum(total) / nullif(sum(n), 0), min(lo), max(hi)
            FROM parts GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    else:
        sql = f"""SELECT device_id, metric, {_US.format("date_bin(%(w)s, ts, %(a)s)")}, avg(value), min(value),
                  max(value) FROM samples WHERE {only} AND ts >= %(a)s AND ts < %(b)s
                  GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(sql, params).fetchall()
    return [replace(s, unit=units.get((s.device_id, s.metric), "")) for s in _to_series(rows, bucketed=bucket_s > 0)]


def _to_series(rows: list[tuple[Any, ...]], *, bucketed: bool) -> list[Series]:
    """Rows ordered by (device, metric, time) -> one ``Series`` per (device, metric)."""
    if not rows:
        return []
    keys = [(r[0], r[1]) for r in rows]
    t = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows)).astype("datetime64[us]")
    cols = [np.array([np.nan if r[k] is None else r[k] for r in rows], dtype=np.float64) for k in (3, 4, 5)]
    cuts = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
    return [
        Series(keys[a][0], keys[a][1], t[a:b], cols[0][a:b], cols[1][a:b] if bucketed else None,
               cols[2][a:b] if bucketed else None)
        for a, b in itertools.pairwise(cuts)
    ]


# ------------------------------------------------------------------------------------------------ procedures


def procedure_rooms(conn: Conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT room FROM procedures ORDER BY 1")]


def procedures(conn: Conn, day: date, room: str | None = None) -> list[ProcedureRow]:
    rows = conn.execute("""
        SELECT p.case_id, p.gateway_id, p.room, p.procedure_type, p.started_at, p.ended_at,
               (SELECT count(*) FROM alarms a JOIN devices d USING (device_id)
                WHERE d.room = p.room AND a.raised_at >= p.started_at
                  AND a.raised_at < coalesce(p.ended_at, now()))
        FROM procedures p
        WHERE p.started_at >= %(day)s::date AND p.started_at < %(day)s::date + 1
          AND (%(room)s::text IS NULL OR p.room = %(room)s)
        ORDER BY p.room, p.started_at""", {"day": day, "room": room}).fetchall()
    return [ProcedureRow(*r) for r in rows]


def procedure(conn: Conn, case_id: str) -> ProcedureRow | None:
    r = conn.execute("SELECT case_id, gateway_id, room, procedure_type, started_at, ended_at FROM procedures"
                     " WHERE case_id = %s", (case_id,)).fetchone()
    return None if r is None else ProcedureRow(*r)


def phases(conn: Conn, case_id: str) -> list[PhaseRow]:
    rows = conn.execute("SELECT phase, started_at, ended_at FROM procedure_phases WHERE case_id = %s"
                        " ORDER BY started_at", (case_id,)).fetchall()
    return [PhaseRow(*r) for r in rows]


def case_devices(conn: Conn, case: ProcedureRow) -> list[tuple[str, str]]:
    """(device_id, device_type) of the case's room, plus any device whose events name the case."""
    rows = conn.execute("""
        SELECT device_id, device_type FROM devices WHERE room = %(room)s OR gateway_id = %(gw)s
        UNION
        SELECT d.device_id, d.device_type FROM events e JOIN devices d USING (device_id)
        WHERE e.case_id = %(case)s AND e.ts >= %(a)s AND e.ts < %(b)s
        ORDER BY 2, 1""", {"room": case.room, "gw": case.gateway_id, "case": case.case_id,
                          "a": case.started_at, "b": case.ended_at or datetime.max}).fetchall()
    return [(r[0], r[1]) for r in rows]


def activation_events(conn: Conn, device_ids: Sequence[str], start: datetime, end: datetime) -> list[EventRow]:
    rows = conn.execute(
        "SELECT device_id, seq, ts, kind, code, severity, text, case_id FROM events"
        " WHERE device_id = ANY(%s) AND kind IN ('activation_start', 'activation_stop')"
        " AND ts >= %s AND ts < %s ORDER BY device_id, ts", (list(device_ids), start, end)).fetchall()
    return [EventRow(*r) for r in rows]


def alarms_between(conn: Conn, device_ids: Sequence[str], start: datetime, end: datetime) -> list[AlarmRow]:
    rows = conn.execute(
        "SELECT a.device_id, code, severity, text, raised_at, cleared_at, acked_at, acked_by,"
        " coalesce(d.room, ''), coalesce(d.device_type, '') FROM alarms a LEFT JOIN devices d USING (device_id)"
        " WHERE a.device_id = ANY(%s) AND raised_at >= %s AND raised_at < %s ORDER BY raised_at",
        (list(device_ids), start, end)).fetchall()
    return [AlarmRow(*r) for r in rows]


def case_completeness(
    conn: Conn, device_ids: Sequence[str], start: datetime, end: datetime
) -> dict[str, tuple[int, int]]:
    """Per device: (records stored, records expected) between its first and last seq seen in the window.

    Index probes on each (device, metric) find the first and last seq; what is missing between them comes
    from ``seq_gaps`` (open, or dropped at the edge). A long case costs a few lookups, not a scan.
    """
    rows = conn.execute(f"""
        WITH m AS (
            SELECT d.device_id, d.gateway_id, x->>'name' AS metric FROM devices d,
                   jsonb_array_elements(d.metrics) x WHERE d.device_id = ANY(%(d)s)),
        ends AS (
            SELECT m.device_id, m.gateway_id,
                (SELECT seq FROM samples s WHERE s.device_id = m.device_id AND s.metric = m.metric
                   AND s.ts >= %(a)s AND s.ts < %(b)s ORDER BY s.ts LIMIT 1) AS first,
                (SELECT seq FROM samples s WHERE s.device_id = m.device_id AND s.metric = m.metric
                   AND s.ts >= %(a)s AND s.ts < %(b)s ORDER BY s.ts DESC LIMIT 1) AS last
            FROM m),
        span AS (SELECT device_id, gateway_id, min(first) AS first, max(last) AS last FROM ends
                 WHERE first IS NOT NULL GROUP BY 1, 2)
        SELECT span.device_id, span.last - span.first + 1,
            (SELECT coalesce(sum(least(g.to_seq, span.last) - greatest(g.from_seq, span.first) + 1), 0)
             FROM seq_gaps g WHERE g.gateway_id = span.gateway_id AND g.stream = span.device_id AND {_LOST}
               AND g.from_seq <= span.last AND g.to_seq >= span.first)
        FROM span""", {"d": list(device_ids), "a": start, "b": end}).fetchall()
    return {r[0]: (int(r[1]) - int(r[2]), int(r[1])) for r in rows}


# ---------------------------------------------------------------------------------------------------- alarms


def alarms(
    conn: Conn, *, active_only: bool, severity: str | None = None, device_id: str | None = None,
    room: str | None = None, limit: int = 500,
) -> list[AlarmRow]:
    rows = conn.execute(f"""
        SELECT a.device_id, a.code, a.severity, a.text, a.raised_at, a.cleared_at, a.acked_at, a.acked_by,
               coalesce(d.room, ''), coalesce(d.device_type, '')
        FROM alarms a LEFT JOIN devices d USING (device_id)
        WHERE (NOT %(act)s OR a.cleared_at IS NULL) AND (%(sev)s::text IS NULL OR a.severity = %(sev)s)
          AND (%(dev)s::text IS NULL OR a.device_id = %(dev)s) AND (%(room)s::text IS NULL OR d.room = %(room)s)
        ORDER BY a.cleared_at IS NULL DESC, {_SEVERITY_RANK}, a.raised_at DESC
        LIMIT %(n)s""", {"act": active_only, "sev": severity, "dev": device_id, "room": room, "n": limit}).fetchall()
    return [AlarmRow(*r) for r in rows]


def ack_alarm(conn: Conn, *, device_id: str, code: str, raised_at: datetime, user: str) -> bool:
    """Acknowledge one alarm (first acknowledgement wins) and audit it, atomically. False if already acked."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE alarms SET acked_at = now(), acked_by = %s WHERE device_id = %s AND code = %s"
            " AND raised_at = %s AND acked_at IS NULL RETURNING acked_at",
            (user, device_id, code, raised_at)).fetchone()
        if row is None:
            return False
        audit(conn, actor=user, action="alarm_ack",
              detail={"device_id": device_id, "code": code, "raised_at": raised_at.isoformat()})
    return True


# -------------------------------------------------------------------------------------------- system, audit


def gateways(conn: Conn) -> list[GatewayRow]:
    rows = conn.execute("""
        SELECT g.gateway_id, coalesce(g.room, ''), g.state, g.state_since, g.last_seen,
               coalesce(g.agent_version, ''), (SELECT count(*) FROM devices d WHERE d.gateway_id = g.gateway_id)
        FROM gateways g ORDER BY g.room, g.gateway_id""").fetchall()
    return [GatewayRow(*r) for r in rows]


def ingest_rate(conn: Conn, minutes: int = 60) -> IngestRate:
    rows = conn.execute("""
        SELECT m, coalesce(count(r.seq), 0), coalesce(sum(r.n_samples), 0)
        FROM generate_series(date_trunc('minute', now()) - make_interval(mins => %(n)s - 1),
                             date_trunc('minute', now()), '1 minute') m
        LEFT JOIN received r ON r.received_at >= m AND r.received_at < m + interval '1 minute'
        GROUP BY m ORDER BY m""", {"n": minutes}).fetchall()
    return IngestRate(tuple(r[0] for r in rows), tuple(int(r[1]) for r in rows), tuple(int(r[2]) for r in rows))


def system_totals(conn: Conn) -> dict[str, float | int | None]:
    """Headline numbers of the system page; lag = age of the newest sample of any connected device."""
    r = conn.execute("""
        SELECT
          (SELECT count(*) FROM received WHERE received_at > now() - interval '1 minute'),
          (SELECT coalesce(sum(n_samples), 0) FROM received WHERE received_at > now() - interval '1 minute'),
          (SELECT extract(epoch FROM now() - max(last_sample_at)) FROM devices WHERE connected),
          (SELECT count(*) FROM dead_letters WHERE received_at > now() - interval '24 hours'),
          (SELECT count(*) FROM seq_gaps WHERE closed_at IS NULL),
          (SELECT coalesce(sum(to_seq - from_seq + 1), 0) FROM seq_gaps WHERE closed_at IS NULL),
          (SELECT coalesce(sum(greatest(0, x.top - w.seq)), 0) FROM watermarks w JOIN
             (SELECT gateway_id, stream, max(seq) AS top FROM received GROUP BY 1, 2) x USING (gateway_id, stream))
        """).fetchone()
    keys = ("records_per_min", "samples_per_min", "lag_s", "dead_letters_24h", "open_gaps", "open_gap_records",
            "unacked_records")
    return dict(zip(keys, (None if v is None else (float(v) if k == "lag_s" else int(v))
                           for k, v in zip(keys, r, strict=True)), strict=True))  # type: ignore[arg-type]


def dead_letters(conn: Conn, limit: int = 100) -> list[DeadLetterRow]:
    rows = conn.execute("SELECT received_at, reason, detail, topic, gateway_id, device_id FROM dead_letters"
                        " ORDER BY received_at DESC LIMIT %s", (limit,)).fetchall()
    return [DeadLetterRow(*r) for r in rows]


def dead_letter_reasons(conn: Conn) -> list[tuple[str, int]]:
    rows = conn.execute("SELECT reason, count(*) FROM dead_letters WHERE received_at > now() - interval '24 hours'"
                        " GROUP BY 1 ORDER BY 2 DESC").fetchall()
    return [(r[0], int(r[1])) for r in rows]


def audit(conn: Conn, *, actor: str, action: str, detail: dict[str, object]) -> None:
    conn.execute("INSERT INTO audit_log (actor, action, detail) VALUES (%s, %s, %s)", (actor, action, Jsonb(detail)))


def login_failures(conn: Conn, user: str, window: timedelta) -> int:
    """Failed logins of ``user`` within ``window`` since their last successful one (the lockout count)."""
    row = conn.execute("""
        SELECT count(*) FROM audit_log
        WHERE actor = %(u)s AND action = 'login_failure' AND at > now() - %(w)s
          AND at > coalesce((SELECT max(at) FROM audit_log WHERE actor = %(u)s AND action = 'login_success'),
                            '-infinity')""", {"u": user, "w": window}).fetchone()
    return int(row[0])  # type: ignore[index]
