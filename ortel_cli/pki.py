"""A private certificate authority for ortel: the broker's TLS certificate and one client certificate per gateway.

The broker's TLS listener (mosquitto.conf, port 8883) requires a client certificate signed by this CA and takes
the certificate's common name as the MQTT user name (``use_identity_as_username``), so a gateway's CN *is* its
gateway id and the ACL pattern ``ortel/v1/%u/...`` confines it to its own prefix.

Layout of a PKI directory (what ``ortel certs`` writes and mosquitto.conf expects under ``certs/``)::

    ca.crt  ca.key                 the dev CA (keep ca.key off the broker in production)
    broker.crt  broker.key         server certificate, SAN localhost / 127.0.0.1 / mosquitto
    gateways/<gw>.crt  <gw>.key    client certificate, CN = gateway id

Keys are ECDSA P-256 (fast, supported by every OpenSSL Mosquitto links against). Private keys are written
0600; ``broker.key`` is 0640 so that a broker that drops to its own user's group can still read it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "BROKER_SANS",
    "RESERVED_NAMES",
    "CertError",
    "Issued",
    "Pki",
    "issue",
    "load_ca",
    "make_ca",
]

# Names a gateway certificate must never carry: on a listener that shares the password file's ACL they would be
# privileged users. The gateways' ACL has no user blocks at all, but refusing them here is cheaper than auditing.
RESERVED_NAMES = frozenset({"ingest", "ortel-admin", "dashboard", "admin", "root", "mosquitto"})
BROKER_SANS = ("localhost", "127.0.0.1", "mosquitto")
_GATEWAY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # wire's Id: a single topic level, no wildcards


class CertError(ValueError):
    """A certificate that must not be issued (bad or reserved name, missing CA)."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def write(self, cert_path: Path, key_path: Path, *, key_mode: int = 0o600) -> None:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        _write(key_path, self.key_pem(), key_mode)
        _write(cert_path, self.cert_pem(), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically with ``mode`` from the start: a key is never world-readable, not even for a moment."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ortel"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(*, now: dt.datetime, common_name: str = "ortel dev CA", valid_days: int = 3650) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert=cert, key=key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    now: dt.datetime,
    server: bool = False,
    sans: tuple[str, ...] = (),
    valid_days: int = 825,
    not_before: dt.datetime | None = None,
    check_name: bool = True,
) -> Issued:
    """Sign a leaf certificate: a TLS server (``server=True``, with ``sans``) or a client (a gateway).

    ``check_name=False`` skips the gateway-id rules; only tests use it, to prove the broker confines a
    certificate with a hostile name anyway.
    """
    if not server and check_name:
        check_gateway_id(common_name)
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or now - dt.timedelta(minutes=5)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + dt.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(s) for s in sans]), critical=False)
    return Issued(cert=builder.sign(ca.key, hashes.SHA256()), key=key)


def _san(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        return x509.DNSName(value)


def check_gateway_id(name: str) -> None:
    """A gateway certificate's CN becomes an MQTT user name and a topic level: same rules as wire's ids."""
    if not _GATEWAY_ID.fullmatch(name):
        raise CertError(f"{name[:80]!r} is not a valid gateway id (letters, digits, '.', '_', '-'; max 64)")
    if name.lower() in RESERVED_NAMES:
        raise CertError(f"{name!r} is reserved for a service login and cannot be a gateway certificate")


def load_ca(directory: Path) -> Issued:
    try:
        cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
        key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise CertError(f"no CA in {directory} (run `ortel certs init` first)") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError("the CA key is not an EC key")
    return Issued(cert=cert, key=key)


@dataclass(frozen=True)
class Pki:
    """The files of one PKI directory; creating them is idempotent (existing files are reused)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def broker_cert(self) -> Path:
        return self.directory / "broker.crt"

    @property
    def broker_key(self) -> Path:
        return self.directory / "broker.key"

    def gateway_cert(self, gateway_id: str) -> Path:
        return self.directory / "gateways" / f"{gateway_id}.crt"

    def gateway_key(self, gateway_id: str) -> Path:
        return self.directory / "gateways" / f"{gateway_id}.key"

    def broker_files(self) -> dict[str, Path]:
        """File name the broker config expects -> file here (copy them next to mosquitto.conf's certs)."""
        return {"ca.crt": self.ca_cert, "broker.crt": self.broker_cert, "broker.key": self.broker_key}

    def ensure_ca(self, *, now: dt.datetime) -> Issued:
        if self.ca_cert.exists():
            return load_ca(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        ca = make_ca(now=now)
        ca.write(self.ca_cert, self.directory / "ca.key")
        return ca

    def ensure_broker(self, *, now: dt.datetime, sans: tuple[str, ...] = BROKER_SANS) -> Path:
        if not self.broker_cert.exists():
            ca = self.ensure_ca(now=now)
            issue(ca, "ortel-broker", now=now, server=True, sans=sans).write(
                self.broker_cert, self.broker_key, key_mode=0o640
            )
        return self.broker_cert

    def ensure_gateway(self, gateway_id: str, *, now: dt.datetime, valid_days: int = 825) -> Path:
        check_gateway_id(gateway_id)
        if not self.gateway_cert(gateway_id).exists():
            ca = self.ensure_ca(now=now)
            issue(ca, gateway_id, now=now, valid_days=valid_days).write(
                self.gateway_cert(gateway_id), self.gateway_key(gateway_id)
            )
        return self.gateway_cert(gateway_id)
