"""Dashboard settings, read once at the entry point (``ortel dashboard`` or ``dashboard.wsgi``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DashboardSettings"]


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORTEL_DASHBOARD_", env_nested_delimiter="__", extra="ignore")

    dsn: str = Field(
        "host=127.0.0.1 port=5432 dbname=ortel user=ortel_reader",
        description="libpq conninfo of the read-only ortel_reader role.",
    )
    host: str = Field("127.0.0.1", description="Address to bind; loopback by default (put a TLS proxy in front).")
    port: int = Field(8050, ge=0, le=65535, description="HTTP port of the dashboard (0 picks a free one).")
    secret_key: SecretStr = Field(
        SecretStr(""),
        description="Key that signs session cookies. Empty: a random key per start (sessions end on restart); "
        "required with several gunicorn workers, which must share it.",
    )
    credentials_file: Path = Field(
        Path(".ortel/credentials"),
        description="Logins, one 'username:werkzeug-password-hash' per line (create with `ortel dashboard "
        "add-user`).",
    )
    session_idle_timeout_s: float = Field(
        1800.0, gt=0, description="A session without user activity for this long must log in again."
    )
    lockout_failures: int = Field(
        5, ge=1, description="Failed logins of one username within lockout_window_s that lock it out."
    )
    lockout_window_s: float = Field(
        900.0, gt=0, description="Lockout window: failures are counted over it, and a lockout lasts as long."
    )
    refresh_interval_s: float = Field(
        2.0, gt=0, le=60, description="How often live pages (overview, device, alarms, system) poll the database."
    )
    pool_max_size: int = Field(8, ge=1, description="Maximum database connections of the dashboard process.")
    secure_cookies: bool = Field(
        False, description="Mark the session cookie Secure (set it when the dashboard is served over HTTPS)."
    )
    log_level: str = Field("info", description="Log level: debug, info, warning, error.")
