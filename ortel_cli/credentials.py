"""Password files: Mosquitto's ``password_file`` and the dashboard's credentials file.

Mosquitto (2.0) reads lines ``user:$7$<iterations>$<base64 salt>$<base64 hash>``: PBKDF2-HMAC-SHA512 with a
12-byte salt and a 64-byte derived key, the iteration count stored per line (mosquitto_passwd writes 101; we
write more, the broker honours whatever the line says). We write it ourselves instead of calling
``mosquitto_passwd -b``, which would put the password on a command line any local user can read in ``ps``.

The dashboard reads ``username:<werkzeug password hash>`` one per line (dashboard/settings.py,
``credentials_file``; werkzeug's default hash is scrypt); that file is written by the dashboard's own
``dashboard.credentials.add_user``.

Both keep other users' lines untouched and leave the file with mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

__all__ = [
    "MOSQUITTO_ITERATIONS",
    "CredentialError",
    "generate_password",
    "mosquitto_hash",
    "mosquitto_verify",
    "read_entries",
    "set_dashboard_password",
    "set_mosquitto_password",
]

MOSQUITTO_ITERATIONS = 10_000  # ~5 ms per CONNECT in the broker; 100x mosquitto_passwd's default
_SALT_BYTES = 12
_KEY_BYTES = 64
# User names end up in an ACL's %u and in a "user:hash" line: no ':' and nothing MQTT treats as special.
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DASHBOARD_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")  # people may log in with an e-mail address


class CredentialError(ValueError):
    """A user name or password that cannot be stored."""


def generate_password(nbytes: int = 18) -> str:
    """A random password of URL-safe characters (18 bytes -> 24 characters, 144 bits)."""
    return secrets.token_urlsafe(nbytes)


def check_user(name: str) -> None:
    if not _USER.fullmatch(name):
        raise CredentialError(f"{name[:80]!r} is not a valid user name (letters, digits, '.', '_', '-'; max 64)")


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _KEY_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def mosquitto_verify(password: str, encoded: str) -> bool:
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    iterations, salt, key = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    derived = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(key))
    return hmac.compare_digest(derived, key)


def read_entries(path: Path) -> dict[str, str]:
    """``user -> hash`` of a ``user:hash`` file (missing file: empty)."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            user, _, encoded = line.partition(":")
            entries[user] = encoded
    return entries


def _write_entries(path: Path, entries: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.writelines(f"{user}:{encoded}\n" for user, encoded in entries.items())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise CredentialError("a password needs at least 8 characters")
    if any(c in password for c in "\n\r\x00"):
        raise CredentialError("a password cannot contain line breaks or NUL")


def set_mosquitto_password(path: Path, user: str, password: str) -> None:
    """Add or replace ``user`` in a Mosquitto password file (the broker reloads it on SIGHUP)."""
    check_user(user)
    _check_password(password)
    entries = read_entries(path)
    entries[user] = mosquitto_hash(password)
    _write_entries(path, entries)


def set_dashboard_password(path: Path, user: str, password: str) -> None:
    """Add or replace ``user`` in the dashboard's credentials file (werkzeug scrypt hash).

    Delegates to the dashboard's own writer so that the format has one owner (``dashboard.credentials``).
    """
    from dashboard.credentials import CredentialsError, add_user

    if not _DASHBOARD_USER.fullmatch(user):  # checked here too: a trailing "\n" would split the line in two
        raise CredentialError(f"{user[:80]!r} is not a valid dashboard user name")
    _check_password(password)
    try:
        add_user(path, user, password)
    except CredentialsError as exc:
        raise CredentialError(str(exc)) from None
