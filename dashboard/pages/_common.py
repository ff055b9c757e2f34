"""Small pieces shared by the pages (the leading underscore keeps Dash from treating it as a page)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.context import services
from dashboard.status import DeviceState


def ticker(component_id: str, *, slow: int = 1) -> dcc.Interval:
    """The page's live-update timer (``slow`` x the configured refresh interval)."""
    return dcc.Interval(id=component_id, interval=services().refresh_ms * slow, n_intervals=0)


def state_badge(state: DeviceState, *, class_name: str = "", **kwargs: Any) -> dbc.Badge:
    return dbc.Badge(state.label, color=state.color, className=f"state-badge {class_name}".strip(), **kwargs)


def fmt_ts(ts: datetime | None, *, seconds: bool = True) -> str:
    if ts is None:
        return "—"
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def fmt_time(ts: datetime | None) -> str:
    return "—" if ts is None else ts.astimezone(UTC).strftime("%H:%M:%S")


def fmt_duration(seconds: float) -> str:
    """'1 h 05 min', '12 min', '40 s'."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def page_header(title: str, subtitle: str | None = None, *, right: Any = None) -> html.Div:
    return html.Div([
        html.Div([html.H2(title, className="h4 mb-0"),
                  html.Div(subtitle, className="text-muted small") if subtitle else None]),
        html.Div(right),
    ], className="d-flex justify-content-between align-items-end mb-3")


def kpi(label: str, value: str, *, color: str = "dark") -> dbc.Card:
    body = html.Div(value, className=f"kpi-value text-{color}")
    return dbc.Card(dbc.CardBody([html.Div(label, className="kpi-label"), body]), className="kpi")
