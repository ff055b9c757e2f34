"""Procedures: the day's cases by room; each opens its timeline."""

from __future__ import annotations

from datetime import date

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from dashboard import db
from dashboard.context import connection
from dashboard.pages._common import fmt_duration, fmt_time, page_header
from dashboard.rows import ProcedureRow

dash.register_page(__name__, path="/procedures", name="Procedures", title="ortel — procedures", order=2)  # type: ignore[no-untyped-call]


def layout(day: str | None = None, **_: object) -> html.Div:
    """``?day=YYYY-MM-DD`` opens that day (bookmarkable); the default is today (UTC)."""
    controls = html.Div([
        dcc.DatePickerSingle(id="procedures-day", display_format="YYYY-MM-DD", className="me-2"),
        dcc.Dropdown(id="procedures-room", placeholder="All rooms", style={"minWidth": "12rem"}),
    ], className="d-flex align-items-center")
    return html.Div([
        dcc.Store(id="procedures-requested", data=day),
        page_header("Procedures", "Cases by room and day", right=controls),
        html.Div(id="procedures-list"),
    ])


@callback(Output("procedures-day", "date"), Output("procedures-room", "options"),
          Input("procedures-requested", "data"))
def init(requested: str | None) -> tuple[str, list[str]]:
    with connection() as conn:
        today = db.db_now(conn).date()
        rooms = db.procedure_rooms(conn)
    try:
        day = date.fromisoformat(requested) if requested else today
    except ValueError:
        day = today
    return day.isoformat(), rooms


@callback(Output("procedures-list", "children"), Input("procedures-day", "date"), Input("procedures-room", "value"))
def refresh(day: str | None, room: str | None) -> object:
    if not day:
        return dash.no_update
    with connection() as conn:
        now = db.db_now(conn)
        cases = db.procedures(conn, date.fromisoformat(day[:10]), room)
    if not cases:
        return dbc.Alert(f"No procedures on {day[:10]}.", color="secondary")
    by_room: dict[str, list[ProcedureRow]] = {}
    for c in cases:
        by_room.setdefault(c.room, []).append(c)
    cards = []
    for room_name, mine in by_room.items():
        rows = [html.Tr([
            html.Td(dcc.Link(c.case_id, href=f"/procedures/{c.case_id}", className="fw-semibold")),
            html.Td(c.procedure_type), html.Td(fmt_time(c.started_at)),
            html.Td(fmt_time(c.ended_at) if c.ended_at else dbc.Badge("running", color="primary")),
            html.Td(fmt_duration(((c.ended_at or now) - c.started_at).total_seconds())),
            html.Td(dbc.Badge(c.n_alarms, color="danger" if c.n_alarms else "light",
                              text_color=None if c.n_alarms else "dark"), className="text-end"),
        ]) for c in mine]
        head = html.Thead(html.Tr([html.Th(h) for h in ("Case", "Procedure", "Start (UTC)", "End", "Duration",
                                                         "Alarms")]))
        cards.append(dbc.Card([dbc.CardHeader(room_name, className="fw-semibold"),
                               dbc.Table([head, html.Tbody(rows)], hover=True, size="sm", className="mb-0 proc-table")],
                              className="mb-3"))
    return cards
