"""S3, S4 and S1 on the TLS listener of the repo's mosquitto.conf (``tls_broker``): mutual TLS for gateways.

The listener requires a client certificate signed by the ortel CA, takes its CN as the user name and as the
client id, and applies mosquitto.gateways.acl (patterns only). Certificates come from ``ortel_cli.pki``, the
code behind ``ortel certs``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ortel_cli.pki import Issued, Pki, issue, load_ca, make_ca
from tests.security.clients import Tls, refused, session
from tests.support.harness import TEST_PASSWORD

NOT_AUTHORIZED = 0x87
ADMIN = {"user": "ortel-admin", "password": TEST_PASSWORD}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _gateway_tls(pki: Pki, gateway_id: str) -> Tls:
    pki.ensure_gateway(gateway_id, now=_now())
    return Tls(pki.ca_cert, pki.gateway_cert(gateway_id), pki.gateway_key(gateway_id))


def _write(issued: Issued, directory: Path, name: str, ca: Path) -> Tls:
    issued.write(directory / f"{name}.crt", directory / f"{name}.key")
    return Tls(ca, directory / f"{name}.crt", directory / f"{name}.key")


def test_tls_listener_refuses_a_client_without_certificate(tls_broker, pki) -> None:
    refused(tls_broker.tls_port, tls=Tls(pki.ca_cert))
    # a password does not replace the certificate
    refused(tls_broker.tls_port, tls=Tls(pki.ca_cert), **ADMIN)


def test_tls_listener_refuses_a_certificate_from_another_ca(tls_broker, pki, tmp_path, uid) -> None:
    fake_ca = make_ca(now=_now(), common_name="ortel dev CA")  # same name, different key
    refused(tls_broker.tls_port, tls=_write(issue(fake_ca, f"gw-{uid}", now=_now()), tmp_path, "fake", pki.ca_cert))


def test_tls_listener_refuses_expired_and_not_yet_valid_certificates(tls_broker, pki, tmp_path, uid) -> None:
    ca = load_ca(pki.directory)
    now = _now()
    expired = issue(ca, f"gw-{uid}", now=now, valid_days=-1, not_before=now - dt.timedelta(days=30))
    refused(tls_broker.tls_port, tls=_write(expired, tmp_path, "expired", pki.ca_cert))
    future = issue(ca, f"gw-{uid}", now=now, valid_days=30, not_before=now + dt.timedelta(days=1))
    refused(tls_broker.tls_port, tls=_write(future, tmp_path, "future", pki.ca_cert))


def test_tls_listener_refuses_a_server_certificate_used_as_client(tls_broker, pki) -> None:
    """The broker's own certificate (serverAuth only) is not a client identity, even though our CA signed it."""
    refused(tls_broker.tls_port, tls=Tls(pki.ca_cert, pki.broker_cert, pki.broker_key))


def test_valid_gateway_certificate_is_confined_to_its_own_prefix(tls_broker, pki, uid) -> None:
    a, b = f"gwa-{uid}", f"gwb-{uid}"
    with session(tls_broker.port, **ADMIN) as observer, session(tls_broker.tls_port, tls=_gateway_tls(pki, a)) as gw:
        observer.subscribe("ortel/v1/#")
        for topic in (f"ortel/v1/{b}/state", f"ortel/v1/{b}/dev/d1/telemetry", f"ortel/v1/{b}/procedure",
                      f"ortel/v1/{a}/ack/d1"):
            assert gw.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
        for topic in (f"ortel/v1/{a}/state", f"ortel/v1/{a}/dev/d1/telemetry", f"ortel/v1/{a}/procedure"):
            assert not gw.publish(topic, b"own").is_failure, topic
        observer.wait_for(f"ortel/v1/{a}/procedure", b"own")
        assert [p for _, p in observer.messages if p == b"forged"] == []


def test_certificate_identity_wins_over_a_claimed_user_name(tls_broker, pki, uid) -> None:
    """A gateway that also sends ortel-admin's user name and password is still only itself on 8883."""
    a, b = f"gwa-{uid}", f"gwb-{uid}"
    with session(tls_broker.tls_port, tls=_gateway_tls(pki, a), **ADMIN) as gw:
        assert gw.publish(f"ortel/v1/{b}/state", b"forged").value == NOT_AUTHORIZED
        assert gw.publish("$SYS/x", b"forged").value == NOT_AUTHORIZED
        assert not gw.publish(f"ortel/v1/{a}/state", b"own").is_failure


def test_gateway_subscribed_to_everything_over_tls_receives_only_its_watermarks(tls_broker, pki, uid) -> None:
    a, b = f"gwa-{uid}", f"gwb-{uid}"
    ingest = {"user": "ingest", "password": TEST_PASSWORD}
    with session(tls_broker.port, **ingest) as ing, session(tls_broker.port, **ADMIN) as admin, \
            session(tls_broker.tls_port, tls=_gateway_tls(pki, a)) as gw:
        gw.subscribe("#")
        assert not admin.publish(f"ortel/v1/{b}/dev/d1/telemetry", b"foreign").is_failure
        assert not ing.publish(f"ortel/v1/{b}/ack/d1", b"foreign").is_failure
        assert not ing.publish(f"ortel/v1/{a}/ack/d1", b"own").is_failure
        gw.wait_for(f"ortel/v1/{a}/ack/d1", b"own")
        assert [t for t, _ in gw.messages] == [f"ortel/v1/{a}/ack/d1"]


@pytest.mark.parametrize("name", ["ortel-admin", "ingest"])
def test_a_certificate_named_like_a_service_gets_no_service_rights(tls_broker, pki, tmp_path, name) -> None:
    """`ortel certs` refuses these names; if a CA signed one anyway, 8883's ACL has no user blocks to match."""
    cert = issue(load_ca(pki.directory), name, now=_now(), check_name=False)
    with session(tls_broker.tls_port, tls=_write(cert, tmp_path, "svc", pki.ca_cert)) as gw:
        assert gw.publish("ortel/v1/gw-x/dev/d1/telemetry", b"forged").value == NOT_AUTHORIZED
        assert gw.publish("ortel/v1/gw-x/state", b"forged").value == NOT_AUTHORIZED


def test_a_certificate_whose_name_spans_topic_levels_cannot_reach_the_gateways_topics(
    tls_broker, pki, tmp_path, uid
) -> None:
    """Wrong-name certificate: CN 'gw/dev/d1' would expand %u across levels; it must not reach gw's topics."""
    a = f"gwa-{uid}"
    cert = issue(load_ca(pki.directory), f"{a}/dev/d1", now=_now(), check_name=False)
    with session(tls_broker.tls_port, tls=_write(cert, tmp_path, "slash", pki.ca_cert)) as gw:
        for topic in (f"ortel/v1/{a}/state", f"ortel/v1/{a}/dev/d1/telemetry", f"ortel/v1/{a}/procedure"):
            assert gw.publish(topic, b"forged").value == NOT_AUTHORIZED, topic


def test_one_gateway_cannot_take_over_another_gateways_session(tls_broker, pki, uid) -> None:
    """use_username_as_clientid: the client id a gateway asks for is replaced by its certificate's CN."""
    a, b = f"gwa-{uid}", f"gwb-{uid}"
    with session(tls_broker.tls_port, tls=_gateway_tls(pki, b), client_id=b) as victim:
        with session(tls_broker.tls_port, tls=_gateway_tls(pki, a), client_id=b) as intruder:
            assert not intruder.publish(f"ortel/v1/{a}/state", b"own").is_failure
        # a takeover would have disconnected the victim: its PUBACK would never come
        assert not victim.publish(f"ortel/v1/{b}/state", b"still here").is_failure
