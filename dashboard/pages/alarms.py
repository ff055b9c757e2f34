"""Alarms: active and historical, filtered by severity, device and room; acknowledge selected alarms
(``alarms.acked_at/acked_by``, the one column pair the reader role may update), audited."""

from __future__ import annotations

from datetime import datetime

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from dashboard import db
from dashboard.context import connection, username
from dashboard.pages._common import fmt_ts, page_header, ticker

dash.register_page(__name__, path="/alarms", name="Alarms", title="ortel — alarms", order=3)  # type: ignore[no-untyped-call]

_SEVERITY_STYLE = {"styleConditions": [
    {"condition": "params.value == 'high'", "style": {"backgroundColor": "#ffe3e3", "fontWeight": 600}},
    {"condition": "params.value == 'medium'", "style": {"backgroundColor": "#fff4e6"}},
]}
COLUMNS = [
    {"field": "severity", "headerName": "Severity", "cellStyle": _SEVERITY_STYLE},
    {"field": "state", "headerName": "State"},
    {"field": "room", "headerName": "Room"},
    {"field": "device_id", "headerName": "Device"},
    {"field": "device_type", "headerName": "Type"},
    {"field": "code", "headerName": "Code"},
    {"field": "text", "headerName": "Text", "flex": 2},
    {"field": "raised", "headerName": "Raised (UTC)", "sort": "desc"},
    {"field": "cleared", "headerName": "Cleared"},
    {"field": "acked", "headerName": "Acknowledged"},
]


def layout(**_: object) -> html.Div:
    filters = dbc.Row([
        dbc.Col(dbc.RadioItems(id="alarms-scope", value="active", inline=True,
                               options=[{"label": "Active", "value": "active"},
                                        {"label": "All (history)", "value": "all"}]), width="auto"),
        dbc.Col(dcc.Dropdown(id="alarms-severity", options=["high", "medium", "low"], placeholder="Any severity"),
                md=2),
        dbc.Col(dcc.Dropdown(id="alarms-room", placeholder="Any room"), md=2),
        dbc.Col(dcc.Dropdown(id="alarms-device", placeholder="Any device"), md=3),
        dbc.Col(dbc.Button("Acknowledge selected", id="alarms-ack", color="primary", size="sm"), width="auto"),
    ], className="g-2 align-items-center mb-2")
    return html.Div([
        page_header("Alarms", "Active first, most severe first"),
        filters,
        html.Div(id="alarms-feedback"),
        dag.AgGrid(id="alarms-grid", columnDefs=COLUMNS, rowData=[], getRowId="params.data.key",
                   defaultColDef={"sortable": True, "filter": True, "resizable": True},
                   dashGridOptions={"rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": True,
                                                     "enableClickSelection": False}, "rowHeight": 34},
                   columnSize="responsiveSizeToFit", className="ag-theme-quartz", style={"height": "65vh"}),
        ticker("alarms-tick"),
    ])


@callback(Output("alarms-room", "options"), Output("alarms-device", "options"), Input("alarms-scope", "id"))
def init(_: str) -> tuple[list[str], list[str]]:
    with connection() as conn:
        devices = db.room_devices(conn)
    return sorted({d.room for d in devices}), sorted(d.device_id for d in devices)


@callback(Output("alarms-grid", "rowData"), Input("alarms-tick", "n_intervals"), Input("alarms-scope", "value"),
          Input("alarms-severity", "value"), Input("alarms-room", "value"), Input("alarms-device", "value"),
          Input("alarms-feedback", "children"))
def refresh(_: int, scope: str, severity: str | None, room: str | None, device_id: str | None,
            _fb: object) -> list[dict[str, object]]:
    with connection() as conn:
        rows = db.alarms(conn, active_only=scope == "active", severity=severity, device_id=device_id, room=room)
    return [{
        "key": f"{a.device_id}|{a.code}|{a.raised_at.isoformat()}", "severity": a.severity,
        "state": "active" if a.cleared_at is None else "cleared", "room": a.room, "device_id": a.device_id,
        "device_type": a.device_type, "code": a.code, "text": a.text, "raised": fmt_ts(a.raised_at),
        "cleared": fmt_ts(a.cleared_at) if a.cleared_at else "",
        "acked": f"{a.acked_by} · {fmt_ts(a.acked_at)}" if a.acked_at else "",
    } for a in rows]


@callback(Output("alarms-feedback", "children"), Input("alarms-ack", "n_clicks"),
          State("alarms-grid", "selectedRows"), prevent_initial_call=True)
def acknowledge(_: int, selected: list[dict[str, object]] | None) -> object:
    if not selected:
        return dbc.Alert("Select one or more alarms first.", color="secondary", duration=4000)
    user = username()
    done = 0
    with connection() as conn:
        for row in selected:
            device_id, code, raised = str(row["key"]).split("|", 2)
            done += db.ack_alarm(conn, device_id=device_id, code=code, raised_at=datetime.fromisoformat(raised),
                                 user=user)
    skipped = len(selected) - done
    text = f"Acknowledged {done} alarm(s) as {user}." + (f" {skipped} already acknowledged." if skipped else "")
    return dbc.Alert(text, color="success", duration=6000, id="alarms-ack-done")
