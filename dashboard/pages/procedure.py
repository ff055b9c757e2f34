"""Procedure timeline: phases as bands, a lane per device with activation segments, alarms as markers, and
time-aligned metric subplots of the chosen devices; per-device data completeness for the case."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from dashboard import db
from dashboard.context import connection
from dashboard.figures import empty
from dashboard.pages._common import fmt_duration, fmt_ts, page_header
from dashboard.status import device_label
from dashboard.timeline import pair_activations, timeline

dash.register_page(__name__, path_template="/procedures/<case_id>", name="Procedure", title="ortel — procedure")  # type: ignore[no-untyped-call]

DEFAULT_PLOTTED = 4


def layout(case_id: str = "", **_: object) -> html.Div:
    return html.Div([
        dcc.Store(id="procedure-id", data=case_id),
        page_header(f"Procedure {case_id}", None, right=html.Div(id="procedure-summary")),
        html.Div([html.Span("Metrics of: ", className="me-2 text-muted"),
                  dcc.Dropdown(id="procedure-devices", multi=True, style={"minWidth": "30rem"})],
                 className="d-flex align-items-center mb-2"),
        dbc.Card(dbc.CardBody(dcc.Loading(dcc.Graph(id="procedure-timeline", config={"displaylogo": False}),
                                          delay_show=400)), className="mb-3"),
        dbc.Card([dbc.CardHeader("Data completeness for this case"),
                  dbc.CardBody(html.Div(id="procedure-completeness"))]),
    ])


@callback(Output("procedure-devices", "options"), Output("procedure-devices", "value"),
          Input("procedure-id", "data"))
def init(case_id: str) -> tuple[list[dict[str, str]], list[str]]:
    with connection() as conn:
        case = db.procedure(conn, case_id)
        lanes = db.case_devices(conn, case) if case else []
    options = [{"label": f"{device_label(t)} · {d}", "value": d} for d, t in lanes]
    return options, [d for d, _ in lanes[:DEFAULT_PLOTTED]]


@callback(Output("procedure-timeline", "figure"), Output("procedure-completeness", "children"),
          Output("procedure-summary", "children"), Input("procedure-devices", "value"),
          State("procedure-id", "data"))
def refresh(plotted: list[str] | None, case_id: str) -> tuple[object, object, object]:
    with connection() as conn:
        now = db.db_now(conn)
        case = db.procedure(conn, case_id)
        if case is None:
            return empty("Unknown procedure"), dbc.Alert(f"No procedure {case_id!r}.", color="warning"), None
        end = case.ended_at or now
        lanes = db.case_devices(conn, case)
        ids = [d for d, _ in lanes]
        phases = db.phases(conn, case_id)
        segments = pair_activations(db.activation_events(conn, ids, case.started_at, end), end=end)
        alarms = db.alarms_between(conn, ids, case.started_at, end)
        series = db.series(conn, plotted or [], case.started_at, end, points=1200) if plotted else []
        complete = db.case_completeness(conn, ids, case.started_at, end)
    fig = timeline(case, phases=phases, lanes=[(d, f"{device_label(t)} · {d}") for d, t in lanes], segments=segments,
                   alarms=alarms, series=series, now=now)
    summary = html.Div([
        html.Span(f"{case.procedure_type} · {case.room} · ", className="text-muted"),
        html.Span(f"{fmt_ts(case.started_at)} UTC · {fmt_duration((end - case.started_at).total_seconds())}"),
        dbc.Badge("running", color="primary", className="ms-2") if case.ended_at is None else None,
    ])
    return fig, _completeness(lanes, complete), summary


def _completeness(lanes: list[tuple[str, str]], complete: dict[str, tuple[int, int]]) -> object:
    rows = []
    for device_id, device_type in lanes:
        stored, expected = complete.get(device_id, (0, 0))
        share = stored / expected if expected else None
        color = "success" if share is not None and share >= 0.999 else "warning" if share else "secondary"
        rows.append(html.Tr([
            html.Td(dcc.Link(device_id, href=f"/devices/{device_id}")), html.Td(device_type),
            html.Td(f"{stored} / {expected}" if expected else "no data", className="text-end"),
            html.Td(dbc.Progress(value=100 * share if share is not None else 0, color=color,
                                 label=f"{100 * share:.1f} %" if share is not None else "", style={"height": "1.1rem"}),
                    style={"width": "40%"}),
        ]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Device", "Type", "Records stored / expected", "Completeness")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", className="mb-0", id="procedure-completeness-table")
