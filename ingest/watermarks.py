"""The ``received`` ledger, per-stream watermarks and sequence gaps (SQL shell around ``ingest.ledger``).

Concurrency: several ingest processes may commit records of one stream at once (shared subscription). Each
transaction locks the streams' watermark rows (``FOR UPDATE``, in key order so two batches cannot deadlock on
them) before it reads the ledger; under READ COMMITTED the read after the lock sees every record the previous
holder committed, so no watermark stalls behind a commit it could not see.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from ingest.classify import LedgerKey
from ingest.ledger import advance, plan_gaps

__all__ = ["DroppedRange", "Ledger", "StreamMark", "record"]

MAX_DROPPED_RANGE = 1_000_000  # an outbox_drop claiming more is implausible; its range is not expanded
# How far above a watermark the ledger is read per commit: keeps the read bounded when a stream has a hole that
# never fills (its later records pile up above the watermark); gaps beyond it are found once it moves up.
LEDGER_WINDOW = 100_000


@dataclass(frozen=True, slots=True)
class DroppedRange:
    gateway_id: str
    stream: str
    from_seq: int
    to_seq: int


@dataclass(frozen=True, slots=True)
class StreamMark:
    gateway_id: str
    stream: str
    seq: int


@dataclass(frozen=True, slots=True)
class Ledger:
    marks: tuple[StreamMark, ...]
    gaps_opened: int
    gaps_closed: int


def record(
    cur: psycopg.Cursor,
    *,
    stored: Sequence[tuple[LedgerKey, int, bool]],
    rejected: Sequence[LedgerKey],
    dropped: Sequence[DroppedRange],
) -> Ledger:
    """Write ledger rows (stored: key, n_samples, replay), then advance the touched streams' watermarks."""
    rows = [(k.gateway_id, k.stream, k.seq, k.kind, "stored", n, replay) for k, n, replay in stored]
    rows += [(k.gateway_id, k.stream, k.seq, k.kind, "rejected", 0, False) for k in rejected]
    if rows:
        cur.execute(
            "INSERT INTO received (gateway_id, stream, seq, kind, status, n_samples, replay)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::int[],"
            " %s::bool[]) ON CONFLICT DO NOTHING",
            [list(col) for col in zip(*rows, strict=True)],
        )
    for d in dropped:
        _record_drop(cur, d)
    touched = {(r[0], r[1]) for r in rows} | {(d.gateway_id, d.stream) for d in dropped}
    return _advance(cur, sorted(touched)) if touched else Ledger((), 0, 0)


def _record_drop(cur: psycopg.Cursor, d: DroppedRange) -> None:
    if d.to_seq < d.from_seq or d.to_seq - d.from_seq >= MAX_DROPPED_RANGE:
        return
    cur.execute(
        "INSERT INTO received (gateway_id, stream, seq, kind, status)"
        " SELECT %s, %s, g, 'telemetry', 'dropped' FROM generate_series(%s::bigint, %s::bigint) g"
        " ON CONFLICT DO NOTHING",
        (d.gateway_id, d.stream, d.from_seq, d.to_seq),
    )
    cur.execute(
        "INSERT INTO seq_gaps (gateway_id, stream, from_seq, to_seq, closed_at, reason)"
        " VALUES (%s, %s, %s, %s, now(), 'dropped_at_edge')"
        " ON CONFLICT (gateway_id, stream, from_seq) DO UPDATE SET reason = 'dropped_at_edge',"
        " to_seq = GREATEST(seq_gaps.to_seq, EXCLUDED.to_seq), closed_at = COALESCE(seq_gaps.closed_at, now())",
        (d.gateway_id, d.stream, d.from_seq, d.to_seq),
    )


def _advance(cur: psycopg.Cursor, keys: list[tuple[str, str]]) -> Ledger:
    gws, streams = [k[0] for k in keys], [k[1] for k in keys]
    # A new stream starts at 0, not below its first seen seq: agents number from 1, and a record published
    # before ingest's first subscription existed (the broker drops it) must show up as a gap that the agent's
    # re-send fills, never be covered by the watermark and deleted at the edge.
    cur.execute(
        "INSERT INTO watermarks (gateway_id, stream, seq)"
        " SELECT g, s, 0 FROM unnest(%s::text[], %s::text[]) AS k(g, s) ON CONFLICT DO NOTHING",
        (gws, streams),
    )
    cur.execute(
        "SELECT w.gateway_id, w.stream, w.seq FROM watermarks w"
        " JOIN unnest(%s::text[], %s::text[]) AS k(g, s) ON w.gateway_id = k.g AND w.stream = k.s"
        " ORDER BY w.gateway_id, w.stream FOR UPDATE OF w",
        (gws, streams),
    )
    current = {(g, s): int(w) for g, s, w in cur.fetchall()}
    above = _by_stream(
        cur,
        "SELECT r.gateway_id, r.stream, r.seq FROM received r"
        " JOIN unnest(%s::text[], %s::text[], %s::bigint[]) AS k(g, s, w)"
        "   ON r.gateway_id = k.g AND r.stream = k.s AND r.seq > k.w AND r.seq <= k.w + %s ORDER BY 1, 2, 3",
        (gws, streams, [current[k] for k in keys], LEDGER_WINDOW),
    )
    gaps = _by_stream(
        cur,
        "SELECT g.gateway_id, g.stream, g.from_seq, g.to_seq FROM seq_gaps g"
        " JOIN unnest(%s::text[], %s::text[]) AS k(g, s) ON g.gateway_id = k.g AND g.stream = k.s"
        " WHERE g.closed_at IS NULL",
        (gws, streams),
    )
    marks, moved, opened, closed = [], [], [], []
    for key in keys:
        seqs = [row[0] for row in above.get(key, [])]
        new = advance(current[key], seqs)
        marks.append(StreamMark(key[0], key[1], new))
        if new != current[key]:
            moved.append((new, *key))
        plan = plan_gaps(new, [s for s in seqs if s > new], [(lo, hi) for lo, hi in gaps.get(key, [])])
        opened += [(*key, lo, hi) for lo, hi in plan.open]
        closed += [(*key, lo) for lo in plan.close]
    if moved:
        cur.execute(
            "UPDATE watermarks w SET seq = m.seq, updated_at = now()"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS m(seq, g, s)"
            " WHERE w.gateway_id = m.g AND w.stream = m.s",
            [list(col) for col in zip(*moved, strict=True)],
        )
    if opened:
        cur.executemany(
            "INSERT INTO seq_gaps (gateway_id, stream, from_seq, to_seq) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            opened,
        )
    if closed:
        cur.executemany(
            "UPDATE seq_gaps SET closed_at = now() WHERE gateway_id = %s AND stream = %s AND from_seq = %s",
            closed,
        )
    return Ledger(tuple(marks), len(opened), len(closed))


def _by_stream(
    cur: psycopg.Cursor, sql: str, params: tuple[object, ...]
) -> dict[tuple[str, str], list[tuple[int, ...]]]:
    cur.execute(sql, params)
    out: dict[tuple[str, str], list[tuple[int, ...]]] = defaultdict(list)
    for gw, stream, *rest in cur.fetchall():
        out[(gw, stream)].append(tuple(int(v) for v in rest))
    return out

