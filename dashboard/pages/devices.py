"""Devices: the inventory as a filterable, sortable grid with CSV export; a row opens the device page."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import db
from dashboard.context import connection
from dashboard.pages._common import fmt_ts, page_header, ticker
from dashboard.status import derive_state, humanize_age

dash.register_page(__name__, path="/devices", name="Devices", title="ortel — devices", order=1)  # type: ignore[no-untyped-call]

_STATUS_STYLE = {"styleConditions": [
    {"condition": f"params.value == '{label}'", "style": {"color": color, "fontWeight": 600}}
    for label, color in (("online", "#2b8a3e"), ("alarming", "#c92a2a"), ("silent", "#e67700"),
                         ("offline", "#868e96"), ("unknown (gateway down)", "#343a40"))
]}
COLUMNS = [
    {"field": "device_id", "headerName": "Device", "pinned": "left", "cellClass": "link-cell", "minWidth": 140},
    {"field": "device_type", "headerName": "Type", "minWidth": 130},
    {"field": "model", "headerName": "Model", "minWidth": 130},
    {"field": "serial", "headerName": "Serial", "minWidth": 110},
    {"field": "firmware", "headerName": "Firmware", "maxWidth": 120},
    {"field": "room", "headerName": "Room", "maxWidth": 110},
    {"field": "status", "headerName": "Status", "cellStyle": _STATUS_STYLE, "minWidth": 200},
    {"field": "last_seen", "headerName": "Last seen (UTC)", "minWidth": 170},
    {"field": "last_heard", "headerName": "Age", "filter": False, "minWidth": 90, "maxWidth": 110},
    {"field": "utilisation", "headerName": "Use (week) %", "filter": "agNumberColumnFilter",
     "type": "rightAligned", "headerTooltip": "Share of this week's time with samples or activations"},
    {"field": "open_alarms", "headerName": "Alarms", "filter": "agNumberColumnFilter", "type": "rightAligned",
     "maxWidth": 110},
    {"field": "completeness", "headerName": "Complete %", "filter": "agNumberColumnFilter",
     "type": "rightAligned", "headerTooltip": "Numbered records stored / expected (received ledger)"},
]


def layout(**_: object) -> html.Div:
    export = dbc.Button("Export CSV", id="devices-export", color="secondary", outline=True, size="sm")
    return html.Div([
        page_header("Devices", "Inventory, status, utilisation and data completeness", right=export),
        dag.AgGrid(
            id="devices-grid", columnDefs=COLUMNS, rowData=[], getRowId="params.data.device_id",
            defaultColDef={"sortable": True, "filter": True, "floatingFilter": True, "resizable": True},
            columnSize="responsiveSizeToFit", className="ag-theme-quartz",
            csvExportParams={"fileName": "ortel-devices.csv"}, style={"height": "70vh"},
            dashGridOptions={"animateRows": False, "rowHeight": 34},
        ),
        dcc.Location(id="devices-nav", refresh="callback-nav"),
        ticker("devices-tick", slow=5),
    ])


@callback(Output("devices-grid", "rowData"), Input("devices-tick", "n_intervals"))
def refresh(_: int) -> list[dict[str, Any]]:
    with connection() as conn:
        now = db.db_now(conn)
        rows = db.inventory(conn)
    out = []
    for r in rows:
        newest = max((t for t in (r.facts.last_seen, r.facts.last_sample_at) if t is not None), default=None)
        out.append({
            "device_id": r.device_id, "device_type": r.device_type, "model": r.model, "serial": r.serial,
            "firmware": r.firmware, "room": r.room, "status": derive_state(r.facts, now=now).value,
            "last_seen": fmt_ts(newest),
            "last_heard": humanize_age(None if newest is None else (now - newest).total_seconds()),
            "utilisation": None if r.utilisation is None else round(100 * r.utilisation, 1),
            "open_alarms": r.facts.open_alarms,
            "completeness": None if r.completeness is None else round(100 * r.completeness, 2),
        })
    return out


@callback(Output("devices-grid", "exportDataAsCsv"), Input("devices-export", "n_clicks"), prevent_initial_call=True)
def export(_: int) -> bool:
    return True


@callback(Output("devices-nav", "href"), Input("devices-grid", "cellClicked"), State("devices-grid", "rowData"),
          prevent_initial_call=True)
def open_device(cell: dict[str, Any] | None, _rows: object) -> Any:
    if not cell or cell.get("colId") != "device_id":
        return no_update
    return f"/devices/{cell.get('rowId') or cell.get('value')}"
