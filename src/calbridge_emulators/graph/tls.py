"""Self-signed TLS material for ``tls=True`` (MSAL only accepts https authorities).

Generates a throw-away CA and a server certificate for ``localhost``/``127.0.0.1``/``::1``
signed by it; clients pass the CA file as ``verify=`` (httpx, requests, MSAL's ``verify``).
Also :func:`make_client_certificate` for app registrations that authenticate with a
certificate (client assertion).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class ServerTls:
    ca_path: Path
    cert_path: Path
    key_path: Path


@dataclass
class ClientCertificate:
    private_key_pem: str
    certificate_pem: str
    thumbprint_sha1: str  # hex, upper-case (as the Azure portal shows it)
    thumbprint_sha256: str


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_server_tls(
    directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
) -> ServerTls:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC) - timedelta(minutes=5)
    ca_key, leaf_key = _key(), _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "calbridge Graph emulator CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = ServerTls(directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    tls.ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    tls.key_path.write_bytes(_pem_key(leaf_key))
    return tls


def make_client_certificate(common_name: str = "calbridge-app") -> ClientCertificate:
    """A self-signed certificate + key for an app registration's certificate credential."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return ClientCertificate(
        private_key_pem=_pem_key(key).decode(),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        thumbprint_sha1=hashlib.sha1(der).hexdigest().upper(),
        thumbprint_sha256=hashlib.sha256(der).hexdigest().upper(),
    )
