"""``create_app(settings) -> dash.Dash``: the multi-page app, its pool, login guard, /healthz and /metrics."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
import flask
import psycopg
from dash import dcc, html
from flask.typing import ResponseReturnValue
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from psycopg_pool import ConnectionPool

from dashboard import db
from dashboard.auth import AuthOptions, install
from dashboard.context import KEY, Services
from dashboard.settings import DashboardSettings

__all__ = ["close", "create_app"]

HERE = Path(__file__).resolve().parent
NAV = [("Overview", "/"), ("Devices", "/devices"), ("Procedures", "/procedures"), ("Alarms", "/alarms"),
       ("System", "/system")]


def _configure(conn: psycopg.Connection) -> None:
    db.prepare_session(conn)


def create_app(settings: DashboardSettings) -> dash.Dash:
    pool = ConnectionPool(
        settings.dsn, min_size=1, max_size=settings.pool_max_size, kwargs={"autocommit": True},
        configure=_configure, name="ortel-dashboard", open=True,
    )
    app = dash.Dash(
        "dashboard", use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
        title="ortel", update_title=None,  # type: ignore[arg-type]  # None: keep the title while updating
        suppress_callback_exceptions=True, serve_locally=True,
    )
    server: flask.Flask = app.server
    server.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value() or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_idle_timeout_s),
        REMEMBER_COOKIE_DURATION=timedelta(0),
    )
    server.extensions[KEY] = Services(pool=pool, refresh_ms=int(settings.refresh_interval_s * 1000))
    registry = CollectorRegistry()
    install(server, AuthOptions(
        credentials_file=settings.credentials_file, idle_timeout_s=settings.session_idle_timeout_s,
        lockout_failures=settings.lockout_failures, lockout_window_s=settings.lockout_window_s,
    ), registry)
    _ops_routes(server, pool, registry)
    app.layout = _shell
    return app


def close(app: dash.Dash) -> None:
    app.server.extensions[KEY].pool.close()


def _ops_routes(server: flask.Flask, pool: ConnectionPool, registry: CollectorRegistry) -> None:
    @server.route("/healthz")
    def healthz() -> ResponseReturnValue:
        try:
            with pool.connection(timeout=2.0) as conn:
                conn.execute("SELECT 1")
        except Exception as exc:  # any failure means "not healthy"; its type is the reason returned
            return flask.jsonify(ok=False, database=type(exc).__name__), 503
        return flask.jsonify(ok=True, database="ok")

    @server.route("/metrics")  # behind the login guard like every non-public route
    def metrics() -> flask.Response:
        return flask.Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def _shell() -> html.Div:
    """The frame around every page: navigation only; all data arrives through callbacks."""
    links = [dbc.NavItem(dbc.NavLink(label, href=href, active="exact", id=f"nav-{label.lower()}"))
             for label, href in NAV]
    bar = dbc.Navbar(dbc.Container([
        dbc.NavbarBrand([html.Span("ortel", className="fw-bold"), html.Span(" · OR device telemetry",
                        className="text-white-50 small")], href="/"),
        dbc.Nav(links, navbar=True, className="me-auto"),
        dbc.Nav([dbc.NavItem(dbc.NavLink("Sign out", href="/logout", external_link=True, id="nav-logout"))],
                navbar=True),
    ], fluid=True), color="dark", dark=True, className="mb-3 py-1")
    return html.Div([dcc.Location(id="shell-url"), bar, dbc.Container(dash.page_container, fluid=True)])
