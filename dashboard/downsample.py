"""Downsampling for plots: keep the shape a human would see at the plot's pixel width.

- ``minmax``: per bucket keep the lowest and the highest point (in time order), so a one-sample spike in a
  month of data survives. Best for envelopes of noisy signals.
- ``lttb``: Largest-Triangle-Three-Buckets (Steinarsson 2013, "Downsampling Time Series for Visual
  Representation", ch. 4): one point per bucket, the one forming the largest triangle with its neighbours.
Both take and return numpy arrays, keep the first and last point, and return the input when it is already
small enough.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RAW_SERIES_SECONDS", "break_gaps", "choose_bucket_s", "lttb", "minmax"]


def _as_float(x: np.ndarray) -> np.ndarray:
    return x.astype("datetime64[us]").astype(np.int64).astype(np.float64) if x.dtype.kind == "M" else x.astype(
        np.float64
    )


def lttb(x: np.ndarray, y: np.ndarray, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``n_out`` points of the series (x ascending). NaNs in ``y`` are dropped first."""
    if n_out < 3:
        raise ValueError("lttb needs n_out >= 3")
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n <= n_out:
        return x, y
    xf = _as_float(x)
    # n_out - 2 buckets between the fixed first and last points
    edges = np.linspace(1, n - 1, n_out - 1).astype(np.int64)
    chosen = np.empty(n_out, dtype=np.int64)
    chosen[0], chosen[-1] = 0, n - 1
    a = 0
    for i in range(n_out - 2):
        lo, hi = edges[i], edges[i + 1]
        nxt_lo, nxt_hi = edges[i + 1], (edges[i + 2] if i + 2 < len(edges) else n)
        # the next bucket's average point (the last point when the next "bucket" is the end)
        cx = xf[nxt_lo:nxt_hi].mean() if nxt_hi > nxt_lo else xf[-1]
        cy = y[nxt_lo:nxt_hi].mean() if nxt_hi > nxt_lo else y[-1]
        area = np.abs((xf[a] - cx) * (y[lo:hi] - y[a]) - (xf[a] - xf[lo:hi]) * (cy - y[a]))
        a = lo + int(np.argmax(area))
        chosen[i + 1] = a
    return x[chosen], y[chosen]


def minmax(x: np.ndarray, y: np.ndarray, n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``2 * n_buckets`` points: each bucket's min and max, in time order. NaNs are dropped."""
    if n_buckets < 1:
        raise ValueError("minmax needs n_buckets >= 1")
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    n = len(x)
    if n <= 2 * n_buckets:
        return x, y
    edges = np.linspace(0, n, n_buckets + 1).astype(np.int64)
    starts = edges[:-1]
    # reduceat gives per-bucket min/max; argmin/argmax positions need a per-bucket pass, vectorised via
    # sorting keys: (bucket, value) so the first/last of each bucket run are its min/max.
    bucket = np.repeat(np.arange(n_buckets), np.diff(edges))
    order = np.lexsort((y, bucket))
    first = order[starts]
    last = order[np.append(starts[1:], n) - 1]
    idx = np.unique(np.concatenate([first, last]))  # unique also sorts: time order restored
    return x[idx], y[idx]


_NICE_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
# Above this many (series x seconds) a plot is served from the 1-minute aggregate instead of raw samples:
# one device for two hours, or twenty devices for six minutes, is about the most a raw scan does in ~100 ms.
RAW_SERIES_SECONDS = 7200.0


def choose_bucket_s(range_s: float, points: int, *, n_devices: int = 1, have_1m: bool = True) -> int:
    """Bucket width (s) for a plot of ``range_s`` seconds at ``points`` buckets; 0 means raw samples.

    Buckets are rounded up to a "nice" width so neighbouring requests reuse the same grid, and are at least a
    minute when the request is large enough to need the ``samples_1m`` aggregate.
    """
    if range_s <= 0 or points < 1:
        raise ValueError("need a positive range and at least one point")
    per_point = range_s / points
    if range_s * n_devices > RAW_SERIES_SECONDS and have_1m:
        per_point = max(per_point, 60.0)
    elif per_point < 1.0:
        return 0
    return next((b for b in _NICE_S if b >= per_point), _NICE_S[-1])


def break_gaps(x: np.ndarray, y: np.ndarray, *, factor: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Insert a NaN wherever consecutive points are more than ``factor`` x the typical spacing apart, so a
    line plot shows missing data as a break instead of a straight line across it."""
    if len(x) < 3:
        return x, y
    dt = np.diff(x.astype("datetime64[us]").astype(np.int64) if x.dtype.kind == "M" else x)
    cut = np.flatnonzero(dt > factor * np.median(dt)) + 1
    if not len(cut):
        return x, y
    gap_x = x[cut - 1] + (x[cut] - x[cut - 1]) / 2 if x.dtype.kind != "M" else x[cut - 1] + (x[cut] - x[cut - 1]) // 2
    return np.insert(x, cut, gap_x), np.insert(y.astype(np.float64), cut, np.nan)
