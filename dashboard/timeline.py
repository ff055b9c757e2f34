"""The procedure timeline, built by pure functions: phases as background bands, one Gantt lane per device
with its activation segments, alarms as markers on their device's lane, and metric subplots underneath on
the same time axis (``make_subplots(shared_xaxes=True)``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures import FONT, PALETTE, SEVERITY_COLORS, display_unit, series_traces
from dashboard.rows import AlarmRow, EventRow, PhaseRow, ProcedureRow, Series

__all__ = ["Segment", "pair_activations", "timeline"]

# Alternating quiet bands: phases must read as context, not compete with the data drawn on them.
# Soft, distinct tints: neighbouring phases must differ from each other and from the white idle gaps.
PHASE_COLORS = ("#e7f5ff", "#fff4e6", "#ebfbee", "#f3f0ff", "#fff9db", "#e6fcf5", "#fff0f6")
MODE_COLORS = {"cut": "#e8590c", "coag": "#1c7ed6", "bipolar": "#7048e8", "seal": "#2b8a3e"}


@dataclass(frozen=True)
class Segment:
    device_id: str
    mode: str
    start: datetime
    end: datetime
    open: bool = False  # no stop seen before the window ended


def pair_activations(events: Sequence[EventRow], *, end: datetime) -> list[Segment]:
    """Pair each device's activation_start with its next activation_stop (events sorted by device, time).

    A start without a stop runs to ``end`` (still active, or the stop was lost); a stray stop is ignored; a
    second start before a stop closes the first one there, since a device cannot be activated twice.
    """
    out: list[Segment] = []
    pending: dict[str, EventRow] = {}
    for ev in sorted(events, key=lambda e: (e.device_id, e.ts)):
        started = pending.pop(ev.device_id, None)
        if started is not None:
            out.append(Segment(ev.device_id, started.code or "on", started.ts, ev.ts))
        if ev.kind == "activation_start":
            pending[ev.device_id] = ev
    out += [Segment(d, ev.code or "on", ev.ts, max(end, ev.ts), open=True) for d, ev in pending.items()]
    return sorted(out, key=lambda s: (s.device_id, s.start))


def timeline(
    case: ProcedureRow, *, phases: Sequence[PhaseRow], lanes: Sequence[tuple[str, str]],
    segments: Sequence[Segment], alarms: Sequence[AlarmRow], series: Sequence[Series], now: datetime,
) -> go.Figure:
    """``lanes`` are (device_id, label) top to bottom; ``series`` of the devices chosen for the subplots."""
    end = case.ended_at or now
    order = [d for d, _ in lanes]
    plotted = sorted((s for s in series if s.device_id in order), key=lambda s: (order.index(s.device_id), s.metric))
    lane_h = max(140, 28 * len(lanes) + 50)
    heights = [lane_h] + [120] * len(plotted)
    # the lanes row has no title: its phase labels sit there
    titles = [""] + [f"{s.device_id} · {s.metric}" + (f" [{display_unit(s.unit)}]" if s.unit else "")
                     for s in plotted]
    fig = make_subplots(rows=len(heights), cols=1, shared_xaxes=True, row_heights=heights, subplot_titles=titles,
                        vertical_spacing=min(0.04, 0.25 / len(heights)))
    # left-align the subplot titles now, before phase annotations exist
    fig.update_annotations(font={**FONT, "size": 12}, x=0, xanchor="left")
    labels = dict(lanes)
    _gantt(fig, segments, labels)
    _alarm_markers(fig, alarms, labels)
    colors = {d: PALETTE[k % len(PALETTE)] for k, d in enumerate(order)}
    for row, s in enumerate(plotted, start=2):
        for trace in series_traces(s, color=colors[s.device_id], name=s.metric, points=1200):
            fig.add_trace(trace, row=row, col=1)
    _phase_bands(fig, phases, end)
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=[labels[d] for d, _ in lanes][::-1],
                     row=1, col=1, showgrid=False)
    # the lanes' bars carry durations as x: force a date axis, or plotly would guess a linear one
    fig.update_xaxes(type="date", range=[case.started_at, end], showspikes=True, spikemode="across",
                     spikethickness=1)
    fig.update_layout(
        template="plotly_white", height=sum(heights) + 110, font=FONT, barmode="overlay", showlegend=True,
        # the legend in the top margin, above the phase labels: a legend over the plot hid them, and one that
        # overflowed to the right made plotly widen the right margin and squeeze the time axis
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1, "yref": "container", "yanchor": "top",
                "font": {"size": 12}, "bgcolor": "rgba(255,255,255,0)"},
        margin={"l": 150, "r": 20, "t": 90, "b": 40}, hovermode="closest", uirevision=case.case_id,
    )
    return fig


def _gantt(fig: go.Figure, segments: Sequence[Segment], labels: dict[str, str]) -> None:
    for mode in sorted({s.mode for s in segments}):
        mine = [s for s in segments if s.mode == mode and s.device_id in labels]
        # numpy columns: plotly validates them in one go (lists of thousands of segments cost 100s of ms)
        start = np.array([s.start.replace(tzinfo=None) for s in mine], dtype="datetime64[us]")
        stop = np.array([s.end.replace(tzinfo=None) for s in mine], dtype="datetime64[us]")
        fig.add_trace(go.Bar(
            base=start, x=(stop - start).astype(np.int64) / 1000.0,
            y=np.array([labels[s.device_id] for s in mine], dtype=object), orientation="h",
            name=f"{mode} activation", showlegend=True,
            marker={"color": MODE_COLORS.get(mode, "#495057"), "line": {"width": 0}}, width=0.6,
            hovertemplate="%{y}<br>" + mode + " for %{x:,.0f} ms<br>from %{base|%H:%M:%S}<extra></extra>",
        ), row=1, col=1)
    # an invisible point per lane keeps lanes without activations on the axis
    fig.add_trace(go.Scatter(x=[None] * len(labels), y=list(labels.values()), mode="markers",
                             hoverinfo="skip", showlegend=False), row=1, col=1)


def _alarm_markers(fig: go.Figure, alarms: Sequence[AlarmRow], labels: dict[str, str]) -> None:
    shown = [a for a in alarms if a.device_id in labels]
    if not shown:
        return
    fig.add_trace(go.Scatter(
        x=[a.raised_at for a in shown], y=[labels[a.device_id] for a in shown], mode="markers", name="alarm",
        showlegend=True,
        marker={"symbol": "triangle-down", "size": 14, "color": [SEVERITY_COLORS.get(a.severity, "#c92a2a")
                                                                    for a in shown],
                "line": {"width": 1, "color": "white"}},
        customdata=[[a.code, a.severity, a.text] for a in shown],
        hovertemplate="%{y}<br><b>%{customdata[0]}</b> (%{customdata[1]})<br>%{customdata[2]}"
                      "<br>%{x|%H:%M:%S}<extra>alarm</extra>",
    ), row=1, col=1)


def _phase_bands(fig: go.Figure, phases: Sequence[PhaseRow], end: datetime) -> None:
    """One paper-high band and divider per phase (shapes built directly: ``add_vrect(row="all")`` inspects
    every subplot per call and costs seconds on a tall figure), labels at the top of the lanes row."""
    shapes, labels = [], []
    for k, p in enumerate(phases):
        x1 = p.ended_at or end
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": p.started_at, "x1": x1, "y0": 0,
                       "y1": 1, "fillcolor": PHASE_COLORS[k % len(PHASE_COLORS)], "line": {"width": 0},
                       "layer": "below"})
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": p.started_at, "x1": p.started_at,
                       "y0": 0, "y1": 1, "line": {"color": "#adb5bd", "width": 1, "dash": "dot"}, "layer": "below"})
        # alternate two label heights so short neighbouring phases do not print over each other
        labels.append({"text": p.phase, "xref": "x", "yref": "y domain", "x": p.started_at, "y": 1.0 + 0.06 * (k % 2),
                       "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                       "font": {**FONT, "size": 12, "color": "#343a40"}})
    fig.update_layout(shapes=list(fig.layout.shapes) + shapes, annotations=list(fig.layout.annotations) + labels)
