"""``ortel certs``, ``ortel users add`` and ``ensure_dev_secrets``: the files they write work with the real
Mosquitto and with the dashboard's hash check, carry private modes, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner
from werkzeug.security import check_password_hash

from ortel_cli.credentials import (
    CredentialError,
    mosquitto_hash,
    mosquitto_verify,
    read_entries,
    set_dashboard_password,
    set_mosquitto_password,
)
from ortel_cli.main import app
from ortel_cli.pki import CertError, Pki
from ortel_cli.security import DEMO_GATEWAYS, ensure_dev_secrets
from ortel_cli.stack import MosquittoServer
from tests.security.clients import Tls, refused, session

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_mosquitto_hash_format_matches_mosquitto_passwd(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "alice", "s3cret-pass"], check=True, capture_output=True)
    theirs = read_entries(passwd)["alice"]
    assert mosquitto_verify("s3cret-pass", theirs) and not mosquitto_verify("wrong-pass", theirs)
    ours = mosquitto_hash("s3cret-pass", salt=b"\x00" * 12, iterations=101)
    assert ours.split("$")[1:3] == theirs.split("$")[1:3] == ["7", "101"]
    assert len(ours) == len(theirs)


def test_password_files_keep_other_users_and_are_private(tmp_path: Path) -> None:
    passwd, creds = tmp_path / "passwd", tmp_path / "credentials"
    set_mosquitto_password(passwd, "gw-a", "password-a")
    set_mosquitto_password(passwd, "gw-b", "password-b")
    set_mosquitto_password(passwd, "gw-a", "password-a2")
    entries = read_entries(passwd)
    assert list(entries) == ["gw-a", "gw-b"]
    assert mosquitto_verify("password-a2", entries["gw-a"]) and mosquitto_verify("password-b", entries["gw-b"])
    set_dashboard_password(creds, "nurse", "correct horse")
    assert check_password_hash(read_entries(creds)["nurse"], "correct horse")
    assert read_entries(creds)["nurse"].startswith("scrypt:")
    assert _mode(passwd) == _mode(creds) == 0o600


@pytest.mark.parametrize("name", ["", "a:b", "a b", "x'); DROP TABLE x;--", "gw\n", "../x", "a" * 65])
def test_hostile_user_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CredentialError):
        set_mosquitto_password(tmp_path / "passwd", name, "long-enough")
    with pytest.raises(CredentialError):
        set_dashboard_password(tmp_path / "credentials", name, "long-enough")


def test_short_or_multiline_passwords_are_refused(tmp_path: Path) -> None:
    for password in ("short", "two\nlines-password"):
        with pytest.raises(CredentialError):
            set_mosquitto_password(tmp_path / "passwd", "gw-a", password)


def test_our_password_file_is_accepted_by_the_real_broker(make_broker, uid) -> None:
    server: MosquittoServer = make_broker()
    server.stop()
    user = f"gw-{uid}"
    set_mosquitto_password(server.passwd_path, user, "our-own-hash")
    server.start()
    with session(server.port, user=user, password="our-own-hash") as gw:
        assert not gw.publish(f"ortel/v1/{user}/state").is_failure
    refused(server.port, user=user, password="not-the-hash")
    with session(server.port, user="ingest", password="test-password"):  # lines mosquitto_passwd wrote survive
        pass


def test_certificates_have_the_right_names_usages_and_chain(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    pki.ensure_broker(now=NOW)
    pki.ensure_gateway("gw-or1", now=NOW)
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    broker = x509.load_pem_x509_certificate(pki.broker_cert.read_bytes())
    gateway = x509.load_pem_x509_certificate(pki.gateway_cert("gw-or1").read_bytes())
    for leaf in (broker, gateway):
        leaf.verify_directly_issued_by(ca)
    sans = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "mosquitto"}
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert gateway.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gw-or1"
    usage = gateway.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _mode(tmp_path / "pki" / "ca.key") == 0o600
    assert _mode(pki.gateway_key("gw-or1")) == 0o600


@pytest.mark.parametrize("name", ["ingest", "ortel-admin", "gw/../x", "gw+", "#", "gw\n", ""])
def test_gateway_certificates_with_reserved_or_hostile_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CertError):
        Pki(tmp_path).ensure_gateway(name, now=NOW)


def test_ensure_dev_secrets_creates_everything_once(tmp_path: Path) -> None:
    first = ensure_dev_secrets(tmp_path / ".ortel", now=NOW)
    files = sorted(p for p in (tmp_path / ".ortel").rglob("*") if p.is_file())
    snapshot = {p: p.read_bytes() for p in files}
    second = ensure_dev_secrets(tmp_path / ".ortel", now=NOW)
    assert first.created and not second.created
    assert {p: p.read_bytes() for p in files} == snapshot  # nothing rewritten
    assert second.broker_passwords == first.broker_passwords
    assert second.dashboard_password == first.dashboard_password
    assert set(first.broker_passwords) == {"ingest", "ortel-admin", *DEMO_GATEWAYS}
    assert first.gateways == DEMO_GATEWAYS
    entries = read_entries(first.broker_passwd)
    assert all(mosquitto_verify(pw, entries[user]) for user, pw in first.broker_passwords.items())
    assert first.dashboard_password is not None
    assert check_password_hash(read_entries(first.dashboard_credentials)["admin"], first.dashboard_password)
    assert all(first.pki.gateway_cert(gw).exists() for gw in DEMO_GATEWAYS)
    assert set(first.db_passwords) == {"ortel_writer", "ortel_reader"}
    for secret in (first.secrets_file, first.broker_passwd, first.dashboard_credentials):
        assert _mode(secret) == 0o600
    assert _mode(tmp_path / ".ortel") == 0o700
    summary = first.summary()
    assert first.dashboard_password in summary and str(first.secrets_file) in summary


def test_ensure_dev_secrets_never_resets_a_changed_login(tmp_path: Path) -> None:
    first = ensure_dev_secrets(tmp_path, now=NOW)
    set_dashboard_password(first.dashboard_credentials, "admin", "chosen-by-a-person")
    again = ensure_dev_secrets(tmp_path, now=NOW)
    assert again.dashboard_password is None
    assert check_password_hash(read_entries(again.dashboard_credentials)["admin"], "chosen-by-a-person")
    assert "changed since" in again.summary()


def test_demo_secrets_run_a_real_broker_with_both_listeners(tmp_path: Path) -> None:
    """What `ortel demo` does: the broker gets the TLS files and logins; a demo gateway connects with its cert."""
    tmp_path.chmod(0o755)
    secrets = ensure_dev_secrets(tmp_path / "state", now=dt.datetime.now(dt.UTC))
    from ortel_cli.stack import free_port

    server = MosquittoServer(directory=tmp_path / "broker", tls_port=free_port(),
                             users=dict(secrets.broker_passwords), tls_files=secrets.broker_tls_files()).start()
    try:
        tls = Tls(secrets.pki.ca_cert, secrets.pki.gateway_cert("gw-or2"), secrets.pki.gateway_key("gw-or2"))
        with session(server.port, user="ingest", password=secrets.broker_passwords["ingest"]) as ingest, \
                session(server.tls_port, tls=tls) as gw:
            ingest.subscribe("ortel/v1/+/state")
            assert not gw.publish("ortel/v1/gw-or2/state", b"online").is_failure
            ingest.wait_for("ortel/v1/gw-or2/state", b"online")
            assert gw.publish("ortel/v1/gw-or1/state", b"forged").value == 0x87
    finally:
        server.stop()


def test_cli_users_add_and_certs(tmp_path: Path) -> None:
    runner = CliRunner()
    passwd, creds = tmp_path / "passwd", tmp_path / "credentials"
    result = runner.invoke(app, ["users", "add", "gw-7", "--generate", "--broker-passwd", str(passwd),
                                 "--dashboard", str(creds)])
    assert result.exit_code == 0, result.output
    password = result.output.split("password: ")[1].split()[0]
    assert mosquitto_verify(password, read_entries(passwd)["gw-7"])
    assert check_password_hash(read_entries(creds)["gw-7"], password)
    result = runner.invoke(app, ["users", "add", "nurse", "--dashboard", str(creds)],
                           env={"ORTEL_USER_PASSWORD": "from-the-environment"})
    assert result.exit_code == 0, result.output
    assert check_password_hash(read_entries(creds)["nurse"], "from-the-environment")
    assert runner.invoke(app, ["users", "add", "gw-8", "--generate"]).exit_code != 0  # no file named
    assert runner.invoke(app, ["users", "add", "a:b", "--generate", "--dashboard", str(creds)]).exit_code != 0

    result = runner.invoke(app, ["certs", "gw-9", "--dir", str(tmp_path / "pki"), "--san", "broker.example"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pki" / "gateways" / "gw-9.crt").exists()
    broker = x509.load_pem_x509_certificate((tmp_path / "pki" / "broker.crt").read_bytes())
    sans = broker.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "broker.example" in sans.get_values_for_type(x509.DNSName)
    assert runner.invoke(app, ["certs", "ortel-admin", "--dir", str(tmp_path / "pki")]).exit_code != 0


def test_ensure_dev_secrets_repairs_a_service_login_the_demo_depends_on(tmp_path: Path) -> None:
    first = ensure_dev_secrets(tmp_path, now=NOW)
    set_mosquitto_password(first.broker_passwd, "ingest", "someone-changed-it")
    again = ensure_dev_secrets(tmp_path, now=NOW)
    assert again.created
    assert mosquitto_verify(first.broker_passwords["ingest"], read_entries(again.broker_passwd)["ingest"])
