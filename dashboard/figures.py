"""Figures of the device and system pages, built by pure functions from ``dashboard.rows`` (no I/O).

Bucketed series are drawn as a min–max band with the bucket average on top, so a spike inside a bucket is
still visible; raw series longer than the plot width are reduced with LTTB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.downsample import break_gaps, lttb
from dashboard.rows import EventRow, IngestRate, MetricDef, Series

__all__ = [
    "FONT", "PALETTE", "SEVERITY_COLORS", "device_history", "display_unit", "empty", "ingest_rate", "series_traces",
]

PALETTE = ("#1f6feb", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#0b7285", "#e67700", "#495057")
SEVERITY_COLORS = {"high": "#c92a2a", "medium": "#e67700", "low": "#1971c2"}
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 13, "color": "#212529"}


# UCUM codes (what devices send) as a clinician reads them
_UNIT_DISPLAY = {"Cel": "°C", "mm[Hg]": "mmHg", "cm[H2O]": "cmH₂O", "Ohm": "Ω", "%": "%", "L/min": "L/min"}


def display_unit(ucum: str) -> str:
    return _UNIT_DISPLAY.get(ucum, ucum)


def _layout(fig: go.Figure, *, height: int) -> go.Figure:
    fig.update_layout(
        template="plotly_white", height=height, font=FONT, margin={"l": 70, "r": 20, "t": 36, "b": 40},
        hovermode="x unified", showlegend=False, uirevision="keep",  # keep zoom across live refreshes
    )
    return fig


def empty(message: str, *, height: int = 300) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={**FONT, "size": 15, "color": "#868e96"},
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=height)


def series_traces(s: Series, *, color: str, name: str, points: int = 1500) -> list[go.Scatter]:
    """Traces of one series: band + average for buckets, a line for raw samples (LTTB beyond ``points``)."""
    if s.lo is not None and s.hi is not None:
        band_x = np.concatenate([s.t, s.t[::-1]])
        band_y = np.concatenate([s.hi, s.lo[::-1]])
        x, y = break_gaps(s.t, s.y, factor=1.5)  # a missing bucket is missing data
        return [
            go.Scatter(x=band_x, y=band_y, fill="toself", fillcolor=_rgba(color, 0.18), line={"width": 0},
                       hoverinfo="skip", name=f"{name} range", showlegend=False),
            go.Scatter(x=x, y=y, mode="lines", line={"color": color, "width": 1.4}, name=name, showlegend=False),
        ]
    x, y = lttb(s.t, s.y, points) if len(s.t) > points else (s.t, s.y)
    x, y = break_gaps(x, y)
    return [go.Scatter(x=x, y=y, mode="lines", line={"color": color, "width": 1.3}, name=name, showlegend=False)]


def device_history(
    series: Sequence[Series], metrics: Sequence[MetricDef], *, events: Sequence[EventRow] = (), title: str = "",
) -> go.Figure:
    """One row per metric on a shared time axis; alarms and faults as vertical markers."""
    by_metric = {s.metric: s for s in series}
    shown = [m for m in metrics if m.name in by_metric] or [
        MetricDef(name, "") for name in sorted(by_metric)
    ]
    if not shown:
        return empty("No samples in this range")
    fig = make_subplots(rows=len(shown), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[f"{m.name} [{display_unit(m.unit)}]" if m.unit else m.name for m in shown])
    shapes: list[dict[str, object]] = []
    for row, m in enumerate(shown, start=1):
        color = PALETTE[(row - 1) % len(PALETTE)]
        for trace in series_traces(by_metric[m.name], color=color, name=m.name):
            fig.add_trace(trace, row=row, col=1)
        if m.low is not None and m.high is not None:  # the device's declared range, faintly
            axis = "" if row == 1 else str(row)
            shapes.append({"type": "rect", "xref": f"x{axis} domain", "yref": f"y{axis}", "x0": 0, "x1": 1,
                           "y0": m.low, "y1": m.high, "fillcolor": "rgba(173,181,189,0.07)", "line": {"width": 0},
                           "layer": "below"})
    # alarms and faults as dotted verticals across every row (shapes directly: add_vline is slow on subplots)
    shapes += [{"type": "line", "xref": "x", "yref": "paper", "x0": ev.ts, "x1": ev.ts, "y0": 0, "y1": 1,
                "line": {"color": SEVERITY_COLORS.get(ev.severity or "high", "#c92a2a"), "width": 1, "dash": "dot"}}
               for ev in events if ev.kind in ("alarm_raised", "fault")]
    fig.update_layout(shapes=shapes)
    fig.update_annotations(font={**FONT, "size": 12}, x=0, xanchor="left")
    if title:
        fig.update_layout(title={"text": title, "font": {**FONT, "size": 14}})
    return _layout(fig, height=max(260, 190 * len(shown) + 60))


def ingest_rate(rate: IngestRate) -> go.Figure:
    if not rate.minute:
        return empty("No ingest in the last hour", height=260)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=rate.minute, y=rate.samples, name="samples / min", marker_color="#74c0fc"))
    fig.add_trace(go.Scatter(x=rate.minute, y=rate.records, name="records / min", mode="lines",
                             line={"color": "#1864ab", "width": 2}), secondary_y=True)
    fig.update_yaxes(title_text="samples / min", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="records / min", secondary_y=True, showgrid=False, rangemode="tozero")
    fig = _layout(fig, height=280)
    fig.update_layout(showlegend=True, legend={"orientation": "h", "y": 1.12, "x": 0})
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
