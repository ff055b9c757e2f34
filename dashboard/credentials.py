"""The dashboard's logins: a text file of ``username:password-hash`` lines (htpasswd style).

Hashes are werkzeug's ``generate_password_hash`` strings (scrypt by default), e.g.

    # ortel dashboard logins — keep this file private (chmod 600)
    engineer:scrypt:32768:8:1$kz3...$7f0c...

Blank lines and lines starting with ``#`` are ignored. A username may not contain ``:`` or whitespace.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

__all__ = ["CredentialsError", "add_user", "parse", "verify"]

_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# Compared against when the user is unknown, so a wrong name costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("ortel-not-a-password")


class CredentialsError(ValueError):
    """A malformed credentials file or username."""


def parse(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not _USER.fullmatch(user) or "$" not in hashed:
            raise CredentialsError(f"line {number}: expected 'username:password-hash'")
        users[user] = hashed
    return users


def verify(users: dict[str, str], user: str, password: str) -> bool:
    hashed = users.get(user)
    ok = check_password_hash(hashed or _DUMMY_HASH, password)
    return ok and hashed is not None


def add_user(path: Path, user: str, password: str) -> None:
    """Add or replace ``user`` in the file (created with mode 600 if missing)."""
    if not _USER.fullmatch(user):
        raise CredentialsError(f"invalid username {user!r}")
    if len(password) < 8:
        raise CredentialsError("password must be at least 8 characters")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text().splitlines() if path.exists() else ["# ortel dashboard logins: username:hash"]
    lines = [ln for ln in lines if ln.strip().partition(":")[0] != user]
    lines.append(f"{user}:{generate_password_hash(password)}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
