"""The credentials file: parsing, scrypt hashes, no timing shortcut for unknown users, private file mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from dashboard.credentials import CredentialsError, add_user, parse, verify


def test_add_user_writes_a_private_file_with_a_scrypt_hash(tmp_path: Path) -> None:
    path = tmp_path / ".ortel" / "credentials"
    add_user(path, "engineer", "correct horse")
    add_user(path, "nurse.lead", "battery staple")
    add_user(path, "engineer", "changed password")  # replaces, does not duplicate
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = parse(path.read_text())
    assert sorted(users) == ["engineer", "nurse.lead"]
    assert users["engineer"].startswith("scrypt:")
    assert verify(users, "engineer", "changed password")
    assert not verify(users, "engineer", "correct horse")
    assert not verify(users, "nobody", "changed password")


def test_parse_skips_comments_and_rejects_garbage() -> None:
    assert parse("# logins\n\n  alice:scrypt:1$a$b  \n") == {"alice": "scrypt:1$a$b"}
    with pytest.raises(CredentialsError, match="line 2"):
        parse("alice:scrypt:1$a$b\nbob-without-hash\n")


@pytest.mark.parametrize(("user", "password"), [("bad name", "long enough"), ("a:b", "long enough"),
                                                ("ok", "short")])
def test_add_user_validates(tmp_path: Path, user: str, password: str) -> None:
    with pytest.raises(CredentialsError):
        add_user(tmp_path / "c", user, password)


def test_user_name_with_a_trailing_newline_is_refused(tmp_path) -> None:
    import pytest as _pytest

    from dashboard.credentials import add_user

    with _pytest.raises(ValueError):
        add_user(tmp_path / "credentials", "engineer\n", "a-long-enough-password")
