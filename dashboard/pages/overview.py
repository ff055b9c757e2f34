"""Overview: every OR as a tile with its devices' states, the running procedure and its phase; live."""

from __future__ import annotations

from datetime import datetime

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, html

from dashboard import db
from dashboard.context import connection
from dashboard.pages._common import fmt_time, page_header, state_badge, ticker
from dashboard.status import DeviceState, DeviceTile, RoomSummary, device_label, humanize_age, summarise_rooms

dash.register_page(__name__, path="/", name="Overview", title="ortel — overview", order=0)  # type: ignore[no-untyped-call]

_LEGEND = [DeviceState.ONLINE, DeviceState.ALARMING, DeviceState.SILENT, DeviceState.OFFLINE, DeviceState.UNKNOWN]


def layout(**_: object) -> html.Div:
    legend = html.Div([state_badge(s, class_name="me-1") for s in _LEGEND])
    return html.Div([
        page_header("Operating rooms", "Device states and running procedures, updated live", right=legend),
        html.Div(id="overview-updated", className="text-muted small mb-2"),
        dbc.Row(id="overview-rooms", className="g-3"),
        ticker("overview-tick"),
    ])


@callback(Output("overview-rooms", "children"), Output("overview-updated", "children"),
          Input("overview-tick", "n_intervals"))
def refresh(_: int) -> tuple[list[dbc.Col], str]:
    with connection() as conn:
        now = db.db_now(conn)
        rooms = summarise_rooms(db.room_devices(conn), now=now)
    if not rooms:
        return [dbc.Col(dbc.Alert("No devices have reported yet.", color="secondary"))], ""
    return [dbc.Col(_tile(r, now), xs=12, md=6, xl=3) for r in rooms], f"as of {fmt_time(now)} UTC"


def _tile(room: RoomSummary, now: datetime) -> html.Div:
    state = room.state or DeviceState.OFFLINE
    counts = [dbc.Badge(f"{room.count(s)} {s.label}", color=s.color, className="ms-1")
              for s in _LEGEND if room.count(s)]
    rows = [_device_row(d) for d in room.devices]
    notes = []
    if room.devices and all(d.state is DeviceState.UNKNOWN for d in room.devices):
        notes.append(dbc.Alert("Gateway down: device states unknown", color="dark", className="py-1 px-2 small mb-2"))
    card = dbc.Card([
        dbc.CardHeader(html.Div([html.Span(room.room, className="room-name"), html.Div(counts)],
                                className="d-flex justify-content-between align-items-center")),
        dbc.CardBody([_case(room, now), *notes,
                      html.Table(html.Tbody(rows), className="table table-sm mb-0 room-devices")]),
    ], className=f"room-tile room-{state.name.lower()} border-{state.color} h-100")
    return html.Div(card, className="h-100", **{"data-room": room.room})  # type: ignore[arg-type]  # data-*


def _case(room: RoomSummary, now: datetime) -> html.Div:
    if not room.case_id:
        return html.Div("No procedure running", className="text-muted room-case")
    since = humanize_age((now - room.case_started_at).total_seconds()) if room.case_started_at else ""
    return html.Div([
        html.Div([html.A(room.procedure_type, href=f"/procedures/{room.case_id}", className="fw-semibold"),
                  html.Span(f"  {since}", className="text-muted small")]),
        html.Div([html.Span("Phase ", className="text-muted"), html.Span(room.phase or "—", className="room-phase"),
                  html.Span(f" · case {room.case_id}", className="text-muted small")], className="small"),
    ], className="room-case running")


def _device_row(d: DeviceTile) -> html.Tr:
    alarm = html.Div(f"▲ {d.alarm}", className="dev-alarm") if d.alarm and d.state is DeviceState.ALARMING else None
    return html.Tr([
        html.Td([html.A(device_label(d.device_type), href=f"/devices/{d.device_id}", className="dev-type"),
                 html.Div(d.device_id, className="dev-id"), alarm]),
        html.Td(state_badge(d.state), className="text-end align-middle"),
        html.Td(humanize_age(d.last_heard_s), className="dev-age text-end align-middle"),
    ], className=f"dev-row dev-{d.state.name.lower()}", **{"data-device": d.device_id})  # type: ignore[arg-type]
