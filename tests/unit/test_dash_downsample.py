"""Downsampling keeps what an engineer must see (spikes, ends, order) and picks sane bucket widths."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dashboard.downsample import RAW_SERIES_SECONDS, choose_bucket_s, lttb, minmax


def _signal(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = (np.arange(n) * 100_000).astype("datetime64[us]")  # 10 Hz
    y = np.sin(np.arange(n) / 500) + rng.normal(0, 0.05, n)
    return t, y


def test_lttb_keeps_ends_order_size_and_a_spike() -> None:
    t, y = _signal(100_000)
    y[54_321] = 25.0
    x2, y2 = lttb(t, y, 800)
    assert len(x2) == 800
    assert x2[0] == t[0] and x2[-1] == t[-1]
    assert np.all(np.diff(x2.astype(np.int64)) > 0)
    assert y2.max() == 25.0


def test_minmax_keeps_both_extremes_of_every_bucket() -> None:
    t, y = _signal(30_000)
    y[100], y[20_000] = -40.0, 40.0
    x2, y2 = minmax(t, y, 500)
    assert len(x2) <= 1000
    assert y2.min() == -40.0 and y2.max() == 40.0
    assert np.all(np.diff(x2.astype(np.int64)) > 0)
    edges = np.linspace(0, len(y), 501).astype(int)
    for a, b in itertools.pairwise(edges):
        assert y[a:b].max() in y2 and y[a:b].min() in y2


def test_small_inputs_pass_through_and_nans_are_dropped() -> None:
    t, y = _signal(50)
    y[3] = np.nan
    for fn, n in ((lttb, 100), (minmax, 100)):
        x2, y2 = fn(t, y, n)
        assert len(x2) == 49 and not np.isnan(y2).any()


def test_month_at_10hz_downsamples_fast_enough_for_a_callback() -> None:
    import time

    t, y = _signal(2_000_000)
    start = time.perf_counter()
    lttb(t, y, 1500)
    minmax(t, y, 750)
    assert time.perf_counter() - start < 2.0  # generous for slow CI; typically ~0.3 s


@pytest.mark.parametrize(("range_s", "points", "devices", "have_1m", "expected"), [
    (900, 1000, 1, True, 0),            # 15 min: raw samples
    (3600, 1000, 1, True, 5),           # 1 h: 3.6 s -> 5 s buckets from raw
    (30 * 86400, 1000, 1, True, 3600),  # a month: hourly buckets from samples_1m
    (4 * 3600, 1200, 20, True, 60),     # a 4 h case of 20 devices: the 1-minute aggregate
    (4 * 3600, 1200, 20, False, 15),    # ... degrades to raw date_bin buckets without it
])
def test_bucket_choice(range_s: float, points: int, devices: int, have_1m: bool, expected: int) -> None:
    assert choose_bucket_s(range_s, points, n_devices=devices, have_1m=have_1m) == expected


def test_bucket_choice_switches_to_the_aggregate_above_the_raw_budget() -> None:
    assert choose_bucket_s(RAW_SERIES_SECONDS, 1000) == 10  # within the raw budget: raw buckets
    assert choose_bucket_s(RAW_SERIES_SECONDS + 1, 10_000) == 60
    with pytest.raises(ValueError, match="positive"):
        choose_bucket_s(0, 10)
