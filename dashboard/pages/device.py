"""Device detail: identity and state, live and historical metric charts with a range picker, events and
faults, sequence gaps. Ranges above a few hours come from the 1-minute aggregate, downsampled to the plot."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from dashboard import db
from dashboard.context import connection
from dashboard.figures import device_history, empty
from dashboard.pages._common import fmt_ts, page_header, state_badge, ticker
from dashboard.rows import DeviceRow, EventRow, GapRow
from dashboard.status import derive_state, humanize_age

dash.register_page(__name__, path_template="/devices/<device_id>", name="Device", title="ortel — device")  # type: ignore[no-untyped-call]

RANGES = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
          "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
LIVE_UP_TO = timedelta(hours=6)  # shorter windows follow "now"; longer ones are history and stay put


def layout(device_id: str = "", **_: object) -> html.Div:
    picker = html.Div([
        dbc.RadioItems(id="device-range", value="1h", inline=True, className="btn-group",
                       inputClassName="btn-check", labelClassName="btn btn-outline-primary btn-sm",
                       labelCheckedClassName="active",
                       options=[{"label": k, "value": k} for k in RANGES] + [{"label": "dates", "value": "custom"}]),
        dcc.DatePickerRange(id="device-dates", display_format="YYYY-MM-DD", className="ms-2",
                            start_date_placeholder_text="from", end_date_placeholder_text="to"),
    ], className="d-flex align-items-center")
    return html.Div([
        dcc.Store(id="device-id", data=device_id),
        page_header(f"Device {device_id}", None, right=picker),
        html.Div(id="device-card", className="mb-3"),
        dbc.Card(dbc.CardBody(dcc.Loading(dcc.Graph(id="device-chart", config={"displaylogo": False}),
                                          delay_show=400)), className="mb-3"),
        dbc.Row([
            dbc.Col(dbc.Card([dbc.CardHeader("Events and faults in range"),
                              dbc.CardBody(html.Div(id="device-events", className="scroll-table"))]), lg=8),
            dbc.Col(dbc.Card([dbc.CardHeader("Sequence gaps"),
                              dbc.CardBody(html.Div(id="device-gaps", className="scroll-table"))]), lg=4),
        ], className="g-3"),
        ticker("device-tick"),
    ])


def _window(choice: str, start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    if choice == "custom" and start and end:
        a = datetime.combine(date.fromisoformat(start[:10]), time(), tzinfo=now.tzinfo)
        b = datetime.combine(date.fromisoformat(end[:10]), time(), tzinfo=now.tzinfo) + timedelta(days=1)
        return a, min(b, now)
    span = RANGES.get(choice, RANGES["1h"])
    return now - span, now


@callback(Output("device-card", "children"), Output("device-chart", "figure"), Output("device-events", "children"),
          Output("device-gaps", "children"), Input("device-tick", "n_intervals"), Input("device-range", "value"),
          Input("device-dates", "start_date"), Input("device-dates", "end_date"), State("device-id", "data"))
def refresh(n: int, choice: str, start: str | None, end: str | None, device_id: str) -> tuple[object, ...]:
    if dash.ctx.triggered_id == "device-tick" and n and RANGES.get(choice, LIVE_UP_TO) > LIVE_UP_TO:
        return dash.no_update, dash.no_update, dash.no_update, dash.no_update
    with connection() as conn:
        now = db.db_now(conn)
        dev = db.device(conn, device_id)
        if dev is None:
            alert = dbc.Alert(f"Unknown device {device_id!r}.", color="warning")
            return alert, empty("Unknown device"), None, None
        a, b = _window(choice, start, end, now)
        series = db.series(conn, [device_id], a, b, points=1200)
        events = db.device_events(conn, device_id, a, b)
        gaps = db.gaps(conn, device_id, hide_brief=True)
        brief = db.brief_gaps(conn, device_id)
    fig = device_history(series, dev.metrics, events=events)
    return _card(dev, now), fig, _events_table(events), _gaps_table(gaps, brief)


def _card(dev: DeviceRow, now: datetime) -> dbc.Card:
    state = derive_state(dev.facts, now=now)
    newest = max((t for t in (dev.facts.last_seen, dev.facts.last_sample_at) if t is not None), default=None)
    facts = [("Type", dev.device_type), ("Manufacturer", dev.manufacturer), ("Model", dev.model),
             ("Serial", dev.serial), ("Firmware", dev.firmware), ("Room", dev.room), ("Gateway", dev.gateway_id),
             ("Heartbeat", f"{dev.facts.heartbeat_s:g} s"),
             ("Last heard", humanize_age(None if newest is None else (now - newest).total_seconds())),
             ("Open alarms", str(dev.facts.open_alarms))]
    return dbc.Card(dbc.CardBody(html.Div(
        [html.Div(state_badge(state, id="device-state"), className="me-4")]
        + [html.Div([html.Div(k, className="kpi-label"), html.Div(v or "—", className="fw-semibold")],
                    className="me-4") for k, v in facts],
        className="d-flex flex-wrap align-items-center")))


def _events_table(events: list[EventRow]) -> object:
    if not events:
        return html.Div("No events in this range.", className="text-muted")
    rows = [html.Tr([html.Td(fmt_ts(e.ts)), html.Td(e.kind), html.Td(e.code or ""), html.Td(e.severity or ""),
                     html.Td(e.text), html.Td(e.seq, className="text-end")],
                    className="table-danger" if e.kind in ("fault", "alarm_raised") else None) for e in events]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Time (UTC)", "Kind", "Code", "Severity", "Text", "Seq")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="mb-0", id="device-events-table")


def _gaps_table(gaps: list[GapRow], brief: int = 0) -> object:
    reordered = (f" {brief} arrived out of order and were filled within {db.BRIEF_GAP_S:.0f} s, not listed."
                 if brief else "")
    if not gaps:
        return html.Div("No gaps: every record arrived." + reordered, className="text-muted")
    rows = [html.Tr([html.Td(f"{g.from_seq}–{g.to_seq}"), html.Td(g.size, className="text-end"),
                     html.Td(g.reason), html.Td("open" if g.closed_at is None else "closed"),
                     html.Td(fmt_ts(g.detected_at))],
                    className="table-warning" if g.closed_at is None else None) for g in gaps]
    head = html.Thead(html.Tr([html.Th(h) for h in ("Seqs", "Records", "Reason", "State", "Detected")]))
    table = dbc.Table([head, html.Tbody(rows)], size="sm", className="mb-0", id="device-gaps-table")
    return html.Div([table, html.Div(reordered.strip(), className="text-muted small mt-1")]) if brief else table
