"""Static checks of the shipped broker configuration (the live behaviour is in test_broker_*.py), and of how
the harness adapts it to a private run."""

from __future__ import annotations

from pathlib import Path

from ortel_cli.stack import render_mosquitto_conf

ROOT = Path(__file__).resolve().parents[2]
CONF = (ROOT / "mosquitto.conf").read_text()


def _blocks(text: str) -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]]]:
    """(global options, {listener port: its options}) of a mosquitto.conf text."""
    glob: dict[str, list[str]] = {}
    listeners: dict[str, dict[str, list[str]]] = {}
    current = glob
    for line in text.splitlines():
        parts = line.split(None, 1)
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "listener":
            current = listeners.setdefault(parts[1].split()[0], {})
            current["bind"] = parts[1].split()[1:]
            continue
        current.setdefault(parts[0], []).append(parts[1] if len(parts) > 1 else "")
    return glob, listeners


def test_every_listener_is_explicit_and_authenticates() -> None:
    glob, listeners = _blocks(CONF)
    assert glob["per_listener_settings"] == ["true"]
    assert "allow_anonymous" not in glob and "password_file" not in glob  # per listener, never global
    assert set(listeners) == {"1883", "1884", "8883"}
    assert listeners["1883"]["bind"] == ["127.0.0.1"]
    for port, opts in listeners.items():
        assert opts["allow_anonymous"] == ["false"], port
        assert len(opts["acl_file"]) == 1, port
    assert "password_file" in listeners["1883"] and "password_file" in listeners["1884"]


def test_tls_listener_requires_client_certificates_and_takes_identity_from_them() -> None:
    tls = _blocks(CONF)[1]["8883"]
    for key, value in {"require_certificate": "true", "use_identity_as_username": "true",
                       "use_username_as_clientid": "true", "tls_version": "tlsv1.2"}.items():
        assert tls[key] == [value], key
    assert {"cafile", "certfile", "keyfile"} <= set(tls)
    assert "password_file" not in tls  # the certificate is the credential
    assert tls["acl_file"] == ["/mosquitto/config/acl-gateways"]


def test_limits_and_persistence() -> None:
    glob = _blocks(CONF)[0]
    assert glob["persistence"] == ["true"]
    assert int(glob["max_packet_size"][0]) <= 4 * 1024 * 1024
    assert int(glob["message_size_limit"][0]) <= int(glob["max_packet_size"][0])
    assert int(glob["max_queued_messages"][0]) > 0
    assert int(glob["max_queued_bytes"][0]) > 0


def _patterns(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("pattern ")]


def test_gateway_acl_is_the_password_acls_patterns_and_nothing_else() -> None:
    gateways = (ROOT / "mosquitto.gateways.acl").read_text().splitlines()
    rules = [line for line in gateways if line.strip() and not line.startswith("#")]
    assert rules == _patterns(ROOT / "mosquitto.gateways.acl")  # no `user` or `topic` lines at all
    assert rules == _patterns(ROOT / "mosquitto.acl")
    assert all("%u" in rule for rule in rules)


def test_private_run_keeps_loopback_listener_and_drops_the_compose_one(tmp_path: Path) -> None:
    plain = _blocks(render_mosquitto_conf(CONF, directory=tmp_path, port=41883, tls_port=None))[1]
    assert set(plain) == {"41883"} and plain["41883"]["bind"] == ["127.0.0.1"]
    both = _blocks(render_mosquitto_conf(CONF, directory=tmp_path, port=41883, tls_port=48883))[1]
    assert set(both) == {"41883", "48883"}
    assert both["48883"]["bind"] == ["127.0.0.1"]
    assert both["48883"]["cafile"] == [str(tmp_path / "ca.crt")]
    assert both["48883"]["acl_file"] == [str(tmp_path / "acl-gateways")]
    assert both["41883"]["password_file"] == [str(tmp_path / "passwd")]
