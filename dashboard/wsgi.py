"""WSGI entry for production servers: ``gunicorn 'dashboard.wsgi:server'`` (settings from ORTEL_DASHBOARD_*)."""

from __future__ import annotations

from dashboard.app import create_app
from dashboard.settings import DashboardSettings

settings = DashboardSettings()
if not settings.secret_key.get_secret_value():
    # every worker would sign cookies with its own random key: logins would hold on one worker only
    raise RuntimeError("set ORTEL_DASHBOARD_SECRET_KEY (shared by all workers) to serve with gunicorn")
app = create_app(settings)
server = app.server
