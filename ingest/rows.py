"""Row shaping (pure): telemetry batches to binary COPY data, events to tuples, limits on timestamps.

The hot path is a TelemetryBatch of up to 10,000 rows x a few metrics, 50k samples/s in a hospital. Samples
become PostgreSQL binary COPY tuples of a fixed layout (the series — device and metric — is a small integer
resolved in the INSERT), so a whole batch of messages is one numpy structured array dumped with
``tobytes()``: no Python loop per sample.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import orjson

from wire import Event, TelemetryBatch

__all__ = [
    "COPY_HEADER",
    "COPY_TRAILER",
    "Limits",
    "SampleCopy",
    "event_row",
    "sample_rows",
    "samples_copy",
]

# PostgreSQL binary COPY: signature, flags (int32), header extension length (int32) ... tuples ... -1 (int16).
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
COPY_TRAILER = b"\xff\xff"


@dataclass(frozen=True, slots=True)
class Limits:
    """Plausible record time relative to the ingest clock (``now_us``): no further ahead or back than this."""

    max_future_us: int
    max_past_us: int

    def violation(self, ts_min_us: int, ts_max_us: int, now_us: int) -> str | None:
        """Why [ts_min_us, ts_max_us] is out of range, or None when it is fine."""
        if ts_max_us > now_us + self.max_future_us:
            return f"{(ts_max_us - now_us) / 1e6:.0f} s in the future (limit {self.max_future_us / 1e6:.0f} s)"
        if ts_min_us < now_us - self.max_past_us:
            return f"{(now_us - ts_min_us) / 1e6:.0f} s in the past (limit {self.max_past_us / 1e6:.0f} s)"
        return None


@dataclass(frozen=True, slots=True)
class SampleCopy:
    """Binary COPY data for the staging table ``(series int4, ts_us int8, value float8, seq int8)``.

    ``series`` n (1-based) stands for ``(devices[n-1], metrics[n-1])``: the text columns are joined back in the
    INSERT, so every COPY tuple has the same fixed layout and the whole batch is one numpy array.
    """

    data: bytes
    rows: int
    devices: tuple[str, ...]
    metrics: tuple[str, ...]


_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_series", ">i4"), ("series", ">i4"),
        ("len_ts", ">i4"), ("ts", ">i8"),
        ("len_value", ">i4"), ("value", ">f8"),
        ("len_seq", ">i4"), ("seq", ">i8"),
    ]
)  # fmt: skip


def samples_copy(batches: Iterable[TelemetryBatch]) -> SampleCopy:
    """All samples of ``batches`` as one binary COPY stream (header and trailer included).

    Columns are gathered with C-level list operations (tuple repetition, extend) and converted to arrays once
    per call: no Python loop per sample. None becomes NaN in the float conversion; the wire forbids NaN
    (allow_inf_nan=False), so NaN means "not measured" and those rows are masked out.
    """
    index: dict[tuple[str, str], int] = {}
    series: list[int] = []
    ts: list[int] = []
    values: list[float | None] = []
    seqs: list[int] = []
    for batch in batches:
        n = len(batch.ts_us)
        for name, column in batch.metrics.items():
            sid = index.setdefault((batch.device_id, name), len(index) + 1)
            series += [sid] * n
            values += column
        ts += batch.ts_us * len(batch.metrics)
        seqs += [batch.seq] * (n * len(batch.metrics))
    vals = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(vals)
    rows = np.empty(int(keep.sum()), dtype=_ROW)
    rows["nfields"] = 4
    rows["len_series"] = 4
    rows["series"] = np.asarray(series, dtype=np.int32)[keep]
    rows["len_ts"] = 8
    rows["ts"] = np.asarray(ts, dtype=np.int64)[keep]
    rows["len_value"] = 8
    rows["value"] = vals[keep]
    rows["len_seq"] = 8
    rows["seq"] = np.asarray(seqs, dtype=np.int64)[keep]
    keys = list(index)
    return SampleCopy(
        COPY_HEADER + rows.tobytes() + COPY_TRAILER,
        len(rows),
        tuple(k[0] for k in keys),
        tuple(k[1] for k in keys),
    )


def sample_rows(batch: TelemetryBatch) -> list[tuple[str, str, int, float, int]]:
    """The same rows as plain tuples (reference implementation for tests and small batches)."""
    return [
        (batch.device_id, name, ts, value, batch.seq)
        for name, values in batch.metrics.items()
        for ts, value in zip(batch.ts_us, values, strict=True)
        if value is not None
    ]


def event_row(event: Event) -> tuple[str, int, int, str, str | None, str | None, str, str | None, bytes]:
    """(device_id, seq, ts_us, kind, code, severity, text, case_id, attrs json) for the events table."""
    return (
        event.device_id,
        event.seq,
        event.ts_us,
        event.kind.value,
        event.code,
        event.severity.value if event.severity else None,
        event.text,
        event.case_id,
        orjson.dumps(event.attrs),
    )
