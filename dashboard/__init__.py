"""The ortel dashboard: device status, procedure timelines, alarms and ingest health for clinical engineers.

Public API: ``dashboard.app.create_app(settings) -> dash.Dash`` (the Flask server is ``app.server``) and
``dashboard.wsgi:server`` for gunicorn. Everything else is internal.
"""
