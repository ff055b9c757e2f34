"""Figures are pure: built from typed rows, checked without a browser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from dashboard.figures import device_history, empty, ingest_rate
from dashboard.rows import AlarmRow, EventRow, IngestRate, MetricDef, PhaseRow, ProcedureRow, Series
from dashboard.timeline import Segment, pair_activations, timeline

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _ev(device: str, minutes: float, kind: str, code: str = "cut") -> EventRow:
    return EventRow(device, 1, T0 + timedelta(minutes=minutes), kind, code, None, "")


def _series(device: str, metric: str, n: int, *, bucketed: bool = False) -> Series:
    t = (np.datetime64(T0.replace(tzinfo=None), "us") + np.arange(n) * np.timedelta64(100_000, "us"))
    y = np.sin(np.arange(n) / 50.0)
    return Series(device, metric, t, y, y - 0.1 if bucketed else None, y + 0.1 if bucketed else None)


def test_pair_activations_handles_open_stray_and_double_starts() -> None:
    end = T0 + timedelta(minutes=60)
    events = [
        _ev("esu", 1, "activation_start"), _ev("esu", 1.1, "activation_stop"),
        _ev("esu", 2, "activation_stop"),                                      # stray stop: ignored
        _ev("esu", 3, "activation_start", "coag"), _ev("esu", 4, "activation_start"),  # restart closes the first
        _ev("esu", 4.5, "activation_stop"),
        _ev("sealer", 50, "activation_start", "seal"),                         # still running at the end
    ]
    segs = pair_activations(events, end=end)
    assert segs == [
        Segment("esu", "cut", T0 + timedelta(minutes=1), T0 + timedelta(minutes=1.1)),
        Segment("esu", "coag", T0 + timedelta(minutes=3), T0 + timedelta(minutes=4)),
        Segment("esu", "cut", T0 + timedelta(minutes=4), T0 + timedelta(minutes=4.5)),
        Segment("sealer", "seal", T0 + timedelta(minutes=50), end, open=True),
    ]


def test_timeline_has_phase_bands_lanes_alarms_and_shared_x() -> None:
    case = ProcedureRow("C-1", "gw1", "OR-1", "lap chole", T0, T0 + timedelta(hours=1))
    phases = [PhaseRow("access", T0, T0 + timedelta(minutes=10)), PhaseRow("dissection", T0 + timedelta(minutes=10),
                                                                            None)]
    lanes = [("esu", "esu · esu"), ("ins", "insufflator · ins"), ("cam", "camera · cam")]
    segs = [Segment("esu", "cut", T0 + timedelta(minutes=5), T0 + timedelta(minutes=5, seconds=8))]
    alarms = [AlarmRow("ins", "OVERPRESSURE", "high", "p high", T0 + timedelta(minutes=30), None, None, None)]
    series = [_series("esu", "power_w", 500, bucketed=True), _series("ins", "pressure_mmhg", 50_000)]
    fig = timeline(case, phases=phases, lanes=lanes, segments=segs, alarms=alarms, series=series,
                   now=T0 + timedelta(hours=2))
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 1 and bars[0].orientation == "h" and bars[0].x[0] == 8000.0  # ms, on a date axis
    assert fig.layout.xaxis.type == "date"
    markers = [t for t in fig.data if t.name == "alarm"]
    assert list(markers[0].y) == ["insufflator · ins"]
    # two bands (one per phase) span every row; the open phase runs to the case end
    bands = [s for s in fig.layout.shapes if s.type == "rect" and s.fillcolor != "rgba(0,0,0,0)"]
    assert len(bands) >= 2 and bands[-1].x1 == case.ended_at
    assert {a.text for a in fig.layout.annotations} >= {"access", "dissection", "esu · power_w"}
    # lanes and metric rows share one x axis (plotly anchors it on the bottom row)
    assert fig.layout.xaxis.matches == fig.layout.xaxis2.matches == "x3"
    raw = next(t for t in fig.data if t.name == "pressure_mmhg")
    assert len(raw.x) <= 1200  # 50,000 raw samples reduced for the plot width
    assert list(fig.layout.yaxis.categoryarray) == ["camera · cam", "insufflator · ins", "esu · esu"]


def test_device_history_one_row_per_metric_with_alarm_markers() -> None:
    metrics = [MetricDef("power_w", "W", 0, 120), MetricDef("impedance_ohm", "Ohm")]
    series = [_series("esu", "power_w", 200, bucketed=True), _series("esu", "impedance_ohm", 200)]
    events = [EventRow("esu", 9, T0 + timedelta(seconds=5), "alarm_raised", "REM", "high", "")]
    fig = device_history(series, metrics, events=events)
    titles = [a.text for a in fig.layout.annotations]
    assert "power_w [W]" in titles and "impedance_ohm [Ω]" in titles  # UCUM code shown as read
    assert any(s.type == "line" for s in fig.layout.shapes)  # the alarm marker
    band = fig.data[0]
    assert band.fill == "toself" and len(band.x) == 400  # hi forward, lo back


def test_empty_and_ingest_rate() -> None:
    assert empty("nothing").layout.annotations[0].text == "nothing"
    assert device_history([], [MetricDef("x", "")]).layout.annotations[0].text == "No samples in this range"
    rate = IngestRate((T0, T0 + timedelta(minutes=1)), (10, 12), (1000, 1200))
    fig = ingest_rate(rate)
    assert [t.name for t in fig.data] == ["samples / min", "records / min"]
