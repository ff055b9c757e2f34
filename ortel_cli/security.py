"""Development secrets for ``ortel demo``: one call creates (or reuses) everything a local run needs.

``ensure_dev_secrets(directory)`` fills ``directory`` (normally ``.ortel/``) with::

    pki/                 private CA, broker certificate (SAN localhost/127.0.0.1/mosquitto), one client
                         certificate per demo gateway (CN = gateway id)          -> ortel_cli.pki
    mosquitto/passwd     broker logins: ingest, ortel-admin, gw-or1..gw-or4 ($7$ PBKDF2-SHA512)
    credentials          dashboard login(s), ``username:<werkzeug scrypt hash>`` per line (0600)
    secrets.toml         the plaintext passwords behind both (0600): services read them from here, the
                         person running the demo is told where to find the dashboard login

and returns a ``DevSecrets`` saying where everything is. A second call reuses what exists and only adds or
repairs what is missing; a dashboard password changed with ``ortel users add`` is never reset.

Database roles: migration 002 creates ortel_writer / ortel_reader without passwords (private clusters use
trust auth on loopback). For a server that checks passwords, ``apply_db_passwords(conninfo, secrets.db_passwords)``
sets the passwords kept in secrets.toml.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ortel_cli.credentials import (
    generate_password,
    mosquitto_verify,
    read_entries,
    set_dashboard_password,
    set_mosquitto_password,
)
from ortel_cli.pki import Pki

__all__ = [
    "DEMO_GATEWAYS",
    "DevSecrets",
    "apply_db_passwords",
    "compose_env",
    "ensure_dev_secrets",
]

DEMO_GATEWAYS = ("gw-or1", "gw-or2", "gw-or3", "gw-or4")
SERVICE_USERS = ("ingest", "ortel-admin")
DB_ROLES = ("ortel_writer", "ortel_reader")
DASHBOARD_USER = "admin"


@dataclass(frozen=True)
class DevSecrets:
    """Where the development secrets are, and the passwords services need to log in.

    ``broker_passwords``: MQTT user -> password (ingest, ortel-admin and each demo gateway).
    ``dashboard_password``: None when the login was changed after it was generated (we no longer know it).
    """

    directory: Path
    pki: Pki
    broker_passwd: Path
    broker_passwords: Mapping[str, str]
    dashboard_credentials: Path
    dashboard_user: str
    dashboard_password: str | None
    db_passwords: Mapping[str, str]
    secrets_file: Path
    created: bool  # True when this call generated anything new

    @property
    def gateways(self) -> tuple[str, ...]:
        return tuple(u for u in self.broker_passwords if u not in SERVICE_USERS)

    def broker_tls_files(self) -> dict[str, Path]:
        """For ``MosquittoServer(tls_files=...)``: the CA and the broker's certificate and key."""
        return self.pki.broker_files()

    def summary(self) -> str:
        """What ``ortel demo`` prints: the dashboard login and where every secret is kept."""
        password = self.dashboard_password or (
            "(changed since it was generated; reset it with "
            f"`ortel users add {self.dashboard_user} --generate --dashboard {self.dashboard_credentials}`)"
        )
        return "\n".join([
            f"Dashboard login: {self.dashboard_user} / {password}",
            f"  kept in {self.secrets_file} (mode 0600); hashes in {self.dashboard_credentials}",
            f"Broker logins (ingest, ortel-admin, {', '.join(self.gateways)}): {self.broker_passwd}",
            f"TLS: CA {self.pki.ca_cert}, gateway certificates in {self.pki.directory / 'gateways'}",
        ])


def ensure_dev_secrets(
    directory: Path, *, gateways: tuple[str, ...] = DEMO_GATEWAYS, now: dt.datetime | None = None
) -> DevSecrets:
    """Create (first call) or reuse (later calls) the development secrets under ``directory``.

    secrets.toml is the source of truth for the service logins: a broker password file entry that is missing
    or does not match it is (re)written. The dashboard login belongs to a person: once it exists it is kept.
    """
    now = now or dt.datetime.now(dt.UTC)
    if not directory.exists():
        # private when we create it; an existing directory keeps its mode (the demo's servers may need to
        # traverse it as their own users, see ortel_cli.stack._give_to)
        directory.mkdir(parents=True, mode=0o700)
    secrets_file = directory / "secrets.toml"
    stored = _load(secrets_file)
    wanted = {"broker": (*SERVICE_USERS, *gateways), "dashboard": (DASHBOARD_USER,), "database": DB_ROLES}
    sections = {name: dict(stored.get(name, {})) for name in wanted}
    created = False
    for name, keys in wanted.items():
        for key in keys:
            if key not in sections[name]:
                sections[name][key] = generate_password()
                created = True
    if created or not secrets_file.exists():
        _save(secrets_file, sections)

    pki = Pki(directory / "pki")
    created |= not pki.broker_cert.exists() or not all(pki.gateway_cert(gw).exists() for gw in gateways)
    pki.ensure_broker(now=now)
    for gateway in gateways:
        pki.ensure_gateway(gateway, now=now)

    passwd = directory / "mosquitto" / "passwd"
    present = read_entries(passwd)
    for user, password in sections["broker"].items():
        if user not in present or not mosquitto_verify(password, present[user]):
            set_mosquitto_password(passwd, user, password)
            created = True
    dashboard_password = _ensure_dashboard(directory / "credentials", sections["dashboard"][DASHBOARD_USER])

    return DevSecrets(
        directory=directory,
        pki=pki,
        broker_passwd=passwd,
        broker_passwords=sections["broker"],
        dashboard_credentials=directory / "credentials",
        dashboard_user=DASHBOARD_USER,
        dashboard_password=dashboard_password,
        db_passwords=sections["database"],
        secrets_file=secrets_file,
        created=created,
    )


def _ensure_dashboard(path: Path, password: str) -> str | None:
    from werkzeug.security import check_password_hash

    encoded = read_entries(path).get(DASHBOARD_USER)
    if encoded is None:
        set_dashboard_password(path, DASHBOARD_USER, password)
        return password
    return password if check_password_hash(encoded, password) else None


def _load(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _save(path: Path, data: dict[str, dict[str, str]]) -> None:
    import tomli_w

    header = "# ortel development secrets: plaintext passwords of the demo's logins. Keep private (0600).\n"
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(header + tomli_w.dumps(data))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def apply_db_passwords(conninfo: str, passwords: Mapping[str, str]) -> None:
    """Set the passwords of ortel_writer / ortel_reader (``DevSecrets.db_passwords`` or from the environment).

    Run as the schema owner after ``ortel db migrate``. Not needed on a private trust-auth cluster; needed on a
    server that checks passwords (compose). The statement carries the password: keep log_statement off.
    """
    import psycopg
    from psycopg import sql

    with psycopg.connect(conninfo, autocommit=True) as conn:
        for role, password in passwords.items():
            if role not in DB_ROLES:
                raise ValueError(f"{role!r} is not an ortel database role")
            conn.execute(
                sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
            )


def compose_env(secrets: DevSecrets, *, postgres_password: str, session_key: str) -> str:
    """A ``.env`` for compose.yaml that matches these secrets (ingest's broker password, the roles' passwords).

    The superuser password and the cookie key are not kept in secrets.toml: the caller passes fresh ones.
    """
    values = {
        "POSTGRES_USER": "ortel_owner",
        "POSTGRES_PASSWORD": postgres_password,
        "ORTEL_DB_WRITER_PASSWORD": secrets.db_passwords["ortel_writer"],
        "ORTEL_DB_READER_PASSWORD": secrets.db_passwords["ortel_reader"],
        "ORTEL_INGEST_MQTT_PASSWORD": secrets.broker_passwords["ingest"],
        "ORTEL_DASHBOARD_SECRET_KEY": session_key,
        # compose treats a volume source as a path only when it starts with '/' or '.'
        "ORTEL_SECRETS_DIR": str(d) if (d := secrets.directory).is_absolute() else f"./{d}",
    }
    header = "# Generated by `ortel users compose-env` from " + str(secrets.secrets_file) + ". Keep private.\n"
    return header + "".join(f"{key}={value}\n" for key, value in values.items())
