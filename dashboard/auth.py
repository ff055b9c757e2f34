"""Login for engineers: Flask-Login sessions, a guard on every route, lockout, idle expiry, audit rows.

- Public: ``/login``, ``/healthz`` and the static ``/assets/`` (styling only, no data). Everything else,
  including Dash's ``/_dash-layout`` and ``/_dash-update-component``, needs a session: pages redirect to
  the login form, Dash's JSON endpoints answer 401 (``assets/session.js`` then sends the browser to login).
- Lockout: ``lockout_failures`` failed attempts of one username within ``lockout_window_s`` (counted in
  audit_log, so it holds across workers and restarts) refuse further attempts until the window passes.
- Idle expiry: the session stores the time of the last *user* request; polling by ``dcc.Interval`` alone does
  not count as activity, so an unattended screen logs out after ``idle_timeout_s``.
"""

from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import flask
import flask_login
from flask.typing import ResponseReturnValue
from prometheus_client import CollectorRegistry, Counter

from dashboard import credentials, db
from dashboard.context import connection
from runtime import logs

log = logs.get("dashboard.auth")

__all__ = ["AuthOptions", "install"]

PUBLIC = ("/login", "/healthz", "/assets/", "/_favicon.ico", "/favicon.ico")
_SEEN = "seen"


@dataclass(frozen=True)
class AuthOptions:
    credentials_file: Path
    idle_timeout_s: float
    lockout_failures: int
    lockout_window_s: float


class _User(flask_login.UserMixin):  # type: ignore[misc]  # untyped base
    def __init__(self, name: str) -> None:
        self.id = name


class _Credentials:
    """The credentials file, re-read when it changes (adding a user needs no restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime: float | None = None
        self._users: dict[str, str] = {}
        self._unreadable_at: float | None = -1.0  # mtime of the file last found unreadable (logged once)

    def users(self) -> dict[str, str]:
        mtime: float | None = None
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                self._users, self._mtime = credentials.parse(self.path.read_text()), mtime
                self._unreadable_at = -1.0
        except FileNotFoundError:
            return {}
        except PermissionError:
            # e.g. a container user that does not own the file: nobody can log in, and the log says why, once
            # per state of the file (every request asks: a log line each would flood the log)
            if self._unreadable_at != mtime:
                self._unreadable_at = mtime
                log.error("cannot read the credentials file: no login possible", path=str(self.path),
                          uid=os.getuid())
            return {}
        return self._users


def install(server: flask.Flask, options: AuthOptions, registry: CollectorRegistry) -> None:
    creds = _Credentials(options.credentials_file)
    logins = Counter("ortel_dashboard_logins", "Login attempts by result", ["result"], registry=registry)
    manager = flask_login.LoginManager()
    manager.init_app(server)
    manager.user_loader(lambda name: _User(name) if name in creds.users() else None)

    @server.before_request
    def _guard() -> ResponseReturnValue | None:
        path = flask.request.path
        if path.startswith(PUBLIC):
            return None
        user = flask_login.current_user
        if user.is_authenticated and _expired(options.idle_timeout_s):
            flask_login.logout_user()
            flask.session.clear()
        elif user.is_authenticated:
            if not _is_polling():
                flask.session[_SEEN] = time.time()
            return None
        if path.startswith(("/_dash", "/metrics")) or flask.request.method != "GET":
            return flask.Response('{"error": "login required"}', 401, mimetype="application/json")
        return flask.redirect(f"/login?next={quote(flask.request.full_path.rstrip('?'))}")

    @server.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        nxt = _safe_next(flask.request.values.get("next", "/"))
        if flask.request.method == "GET":
            return _login_form(nxt, "")
        name = flask.request.form.get("username", "")[:64]
        password = flask.request.form.get("password", "")
        window = timedelta(seconds=options.lockout_window_s)
        with connection() as conn:
            if db.login_failures(conn, name, window) >= options.lockout_failures:
                db.audit(conn, actor=name, action="login_locked", detail={"ip": flask.request.remote_addr})
                logins.labels("locked").inc()
                return _login_form(nxt, "Too many failed attempts: this account is locked for a while."), 429
            if not credentials.verify(creds.users(), name, password):
                db.audit(conn, actor=name, action="login_failure", detail={"ip": flask.request.remote_addr})
                logins.labels("failure").inc()
                return _login_form(nxt, "Wrong username or password."), 401
            db.audit(conn, actor=name, action="login_success", detail={"ip": flask.request.remote_addr})
        logins.labels("success").inc()
        flask.session.clear()  # no session fixation: a fresh session for the new identity
        flask_login.login_user(_User(name))
        flask.session[_SEEN] = time.time()
        return flask.redirect(nxt)

    @server.route("/logout")
    def logout() -> ResponseReturnValue:
        if flask_login.current_user.is_authenticated:
            with connection() as conn:
                db.audit(conn, actor=flask_login.current_user.get_id(), action="logout", detail={})
        flask_login.logout_user()
        flask.session.clear()
        return flask.redirect("/login")


def _expired(idle_timeout_s: float) -> bool:
    seen = flask.session.get(_SEEN)
    return seen is None or time.time() - float(seen) > idle_timeout_s


def _is_polling() -> bool:
    """A Dash update fired only by interval timers is the screen refreshing itself, not a person."""
    if flask.request.path != "/_dash-update-component":
        return False
    body = flask.request.get_json(silent=True) or {}
    changed = body.get("changedPropIds") or []
    return bool(changed) and all(str(c).endswith(".n_intervals") for c in changed)


def _safe_next(target: str) -> str:
    # only local paths: never bounce a fresh session to another site
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


_FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ortel — sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/bootstrap.min.css"><link rel="stylesheet" href="/assets/ortel.css">
</head><body class="bg-light"><main class="container" style="max-width: 26rem; margin-top: 12vh">
<div class="card shadow-sm"><div class="card-body p-4">
<h1 class="h4 mb-1">ortel</h1><p class="text-muted mb-4">Surgical device telemetry — engineers' sign in</p>
{error}<form method="post" action="/login" id="login-form">
<input type="hidden" name="next" value="{next}">
<div class="mb-3"><label class="form-label" for="username">Username</label>
<input class="form-control" id="username" name="username" autocomplete="username" required autofocus></div>
<div class="mb-3"><label class="form-label" for="password">Password</label>
<input class="form-control" id="password" name="password" type="password" autocomplete="current-password"
 required></div>
<button class="btn btn-primary w-100" type="submit" id="login-submit">Sign in</button></form>
</div></div></main></body></html>"""


def _login_form(nxt: str, error: str) -> str:
    alert = f'<div class="alert alert-danger" id="login-error">{html.escape(error)}</div>' if error else ""
    return _FORM.format(error=alert, next=html.escape(nxt, quote=True))
