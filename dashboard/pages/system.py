"""System: ingest rate and lag, dead letters with reasons, sequence gaps, gateway states — all from the
tables (ingest's own /metrics is deliberately not reachable from the dashboard)."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from dashboard import db
from dashboard.context import connection
from dashboard.figures import ingest_rate
from dashboard.pages._common import fmt_ts, kpi, page_header, ticker
from dashboard.rows import DeadLetterRow, GapRow, GatewayRow
from dashboard.status import humanize_age

dash.register_page(__name__, path="/system", name="System", title="ortel — system", order=4)  # type: ignore[no-untyped-call]


def layout(**_: object) -> html.Div:
    return html.Div([
        page_header("System", "Ingest health, reliability ledgers and gateways"),
        dbc.Row(id="system-kpis", className="g-3 mb-3"),
        dbc.Card([dbc.CardHeader("Ingest rate, last hour"), dbc.CardBody(dcc.Graph(id="system-rate"))],
                 className="mb-3"),
        dbc.Row([
            dbc.Col(dbc.Card([dbc.CardHeader("Gateways"), dbc.CardBody(html.Div(id="system-gateways"))]), lg=6),
            dbc.Col(dbc.Card([dbc.CardHeader("Open sequence gaps"), dbc.CardBody(html.Div(id="system-gaps"))]), lg=6),
        ], className="g-3 mb-3"),
        dbc.Card([dbc.CardHeader("Dead letters (newest first)"), dbc.CardBody(html.Div(id="system-dead"))]),
        ticker("system-tick", slow=2),
    ])


@callback(Output("system-kpis", "children"), Output("system-rate", "figure"), Output("system-gateways", "children"),
          Output("system-gaps", "children"), Output("system-dead", "children"), Input("system-tick", "n_intervals"))
def refresh(_: int) -> tuple[object, ...]:
    with connection() as conn:
        totals = db.system_totals(conn)
        rate = db.ingest_rate(conn)
        gws = db.gateways(conn)
        open_gaps = db.gaps(conn, open_only=True, limit=50)
        dead = db.dead_letters(conn, limit=50)
        reasons = db.dead_letter_reasons(conn)
    lag = totals["lag_s"]
    kpis = [
        ("Samples / min", f"{totals['samples_per_min']:,}", "dark"),
        ("Records / min", f"{totals['records_per_min']:,}", "dark"),
        ("Data age", humanize_age(lag), "danger" if lag is not None and lag > 30 else "dark"),
        ("Unacknowledged records", f"{totals['unacked_records']:,}", "dark"),
        ("Open gaps", f"{totals['open_gaps']} ({totals['open_gap_records']} records)",
         "warning" if totals["open_gaps"] else "success"),
        ("Dead letters, 24 h", f"{totals['dead_letters_24h']}", "danger" if totals["dead_letters_24h"] else "success"),
    ]
    cols = [dbc.Col(kpi(label, value, color=color), md=4, xl=2) for label, value, color in kpis]
    return cols, ingest_rate(rate), _gateways(gws), _gaps(open_gaps), _dead(dead, reasons)


def _table(headers: tuple[str, ...], rows: list[html.Tr], table_id: str) -> dbc.Table:
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in headers])), html.Tbody(rows)], size="sm",
                     className="mb-0", id=table_id)


def _gateways(gws: list[GatewayRow]) -> object:
    color = {"online": "success", "offline": "danger"}
    rows = [html.Tr([html.Td(g.gateway_id), html.Td(g.room), html.Td(dbc.Badge(g.state, color=color.get(g.state,
                     "secondary"))), html.Td(fmt_ts(g.state_since)), html.Td(g.n_devices, className="text-end"),
                     html.Td(g.agent_version)]) for g in gws]
    return _table(("Gateway", "Room", "State", "Since (UTC)", "Devices", "Agent"), rows, "system-gateways-table")


def _gaps(gaps: list[GapRow]) -> object:
    if not gaps:
        return html.Div("No open gaps.", className="text-success")
    rows = [html.Tr([html.Td(g.gateway_id), html.Td(g.stream), html.Td(f"{g.from_seq}–{g.to_seq}"),
                     html.Td(g.size, className="text-end"), html.Td(g.reason), html.Td(fmt_ts(g.detected_at))])
            for g in gaps]
    return _table(("Gateway", "Stream", "Seqs", "Records", "Reason", "Detected"), rows, "system-gaps-table")


def _dead(dead: list[DeadLetterRow], reasons: list[tuple[str, int]]) -> object:
    if not dead:
        return html.Div("No dead letters.", className="text-success")
    summary = html.Div([dbc.Badge(f"{r}: {n}", color="danger", className="me-1") for r, n in reasons],
                       className="mb-2")
    rows = [html.Tr([html.Td(fmt_ts(d.received_at)), html.Td(html.Code(d.reason)), html.Td(d.detail[:160]),
                     html.Td(d.topic, className="small text-muted"), html.Td(d.device_id or "")]) for d in dead]
    return html.Div([summary, _table(("Received (UTC)", "Reason", "Detail", "Topic", "Device"), rows,
                                     "system-dead-table")])
