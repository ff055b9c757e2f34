"""Login, lockout, idle expiry and the route guard, through the real Flask app on a real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask.testing import FlaskClient

from dashboard.app import close, create_app
from dashboard.credentials import add_user
from dashboard.settings import DashboardSettings
from tests.support.harness import Database, create_database, drop_database
from tests.support.poll import wait_until
from tests.support.seed import heartbeat, seed_or_day

PASSWORD = "or-engineer-pass"
IDLE_S = 3.0
PAGES = ["/", "/devices", "/devices/esu-or1", "/procedures", "/procedures/C-7F3A19", "/alarms", "/system"]
OVERVIEW_UPDATE = {
    "output": "..overview-rooms.children...overview-updated.children..",
    "outputs": [{"id": "overview-rooms", "property": "children"}, {"id": "overview-updated", "property": "children"}],
    "inputs": [{"id": "overview-tick", "property": "n_intervals", "value": 1}],
    "changedPropIds": ["overview-tick.n_intervals"], "state": [],
}


@pytest.fixture(scope="module")
def database(pg) -> Iterator[Database]:
    database = create_database(pg, "plain")
    seed_or_day(database.dsn(), hz=0.5)
    heartbeat(database.dsn())
    yield database
    drop_database(database)


@pytest.fixture(scope="module")
def creds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth") / "credentials"


@pytest.fixture(scope="module")
def app(database: Database, creds: Path):  # type: ignore[no-untyped-def]
    add_user(creds, "engineer", PASSWORD)
    add_user(creds, "locksmith", PASSWORD)
    settings = DashboardSettings(dsn=database.reader_dsn, credentials_file=creds, secret_key="test-secret",
                                 session_idle_timeout_s=IDLE_S, lockout_failures=3, lockout_window_s=600)
    dash_app = create_app(settings)
    yield dash_app
    close(dash_app)


@pytest.fixture
def client(app) -> FlaskClient:  # type: ignore[no-untyped-def]
    return app.server.test_client()


def _login(client: FlaskClient, user: str = "engineer", password: str = PASSWORD, nxt: str = "/"):  # type: ignore[no-untyped-def]
    return client.post("/login", data={"username": user, "password": password, "next": nxt})


def _audit(database: Database, actor: str) -> list[str]:
    return [r[0] for r in database.query("SELECT action FROM audit_log WHERE actor = %s ORDER BY id", (actor,))]


def test_everything_but_login_and_health_needs_a_session(client: FlaskClient) -> None:
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302 and response.location.startswith("/login?next="), path
    for path in ("/_dash-layout", "/_dash-dependencies", "/metrics"):
        assert client.get(path).status_code == 401, path
    update = client.post("/_dash-update-component", json=OVERVIEW_UPDATE)
    assert update.status_code == 401 and b"OR-1" not in update.data
    assert client.get("/healthz").json == {"ok": True, "database": "ok"}
    assert b"Sign in" in client.get("/login").data


def test_login_then_data_flows_and_logout_ends_it(client: FlaskClient, database: Database) -> None:
    response = _login(client, nxt="/alarms")
    assert response.status_code == 302 and response.location == "/alarms"
    assert client.get("/alarms").status_code == 200
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200 and b"OR-1" not in layout.data  # the layout holds no data
    update = client.post("/_dash-update-component", json=OVERVIEW_UPDATE)
    assert update.status_code == 200 and "OR-1" in json.dumps(update.json)
    assert b"ortel_dashboard_logins" in client.get("/metrics").data
    client.get("/logout")
    assert client.post("/_dash-update-component", json=OVERVIEW_UPDATE).status_code == 401
    assert _audit(database, "engineer")[-2:] == ["login_success", "logout"]


def test_open_redirects_are_refused(client: FlaskClient) -> None:
    assert _login(client, nxt="//evil.example/x").location == "/"


def test_lockout_after_repeated_failures_is_audited(client: FlaskClient, database: Database) -> None:
    for _ in range(3):
        assert _login(client, "locksmith", "wrong-password").status_code == 401
    locked = _login(client, "locksmith", PASSWORD)  # right password, but locked now
    assert locked.status_code == 429 and b"locked" in locked.data
    assert client.get("/").status_code == 302
    assert _audit(database, "locksmith") == ["login_failure"] * 3 + ["login_locked"]
    # the audit trail is append-only for the dashboard's role
    with psycopg.connect(database.reader_dsn, autocommit=True) as conn, pytest.raises(
        psycopg.errors.InsufficientPrivilege
    ):
        conn.execute("DELETE FROM audit_log WHERE actor = 'locksmith'")


def test_unknown_user_fails_like_a_wrong_password(client: FlaskClient, database: Database) -> None:
    assert _login(client, "mallory", PASSWORD).status_code == 401
    assert _audit(database, "mallory") == ["login_failure"]


def test_idle_session_expires_even_while_the_screen_polls(client: FlaskClient) -> None:
    _login(client)
    assert client.post("/_dash-update-component", json=OVERVIEW_UPDATE).status_code == 200
    # interval-driven polls are not user activity: the session must still run out after IDLE_S
    wait_until(lambda: client.post("/_dash-update-component", json=OVERVIEW_UPDATE).status_code == 401,
               timeout=IDLE_S + 10, interval=0.25, what="idle session to expire")
    assert client.get("/devices").status_code == 302


def test_a_user_added_to_the_credentials_file_can_log_in_without_restart(client: FlaskClient, creds: Path) -> None:
    assert _login(client, "newcomer", "newcomer-pass").status_code == 401
    add_user(creds, "newcomer", "newcomer-pass")
    assert _login(client, "newcomer", "newcomer-pass").status_code == 302
    assert client.get("/system").status_code == 200
