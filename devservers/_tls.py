"""Certificates for loopback servers (made with ``cryptography``).

:class:`SelfSignedCert` serves Dovecot and the SMTP server; :class:`CertificateAuthority`
signs the Kafka broker's certificate and the clients' certificates of mutual TLS.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_LOOPBACK = x509.SubjectAlternativeName(
    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
)


def _write(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path, key_path: Path
) -> None:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


def _builder(
    subject: str, issuer: x509.Name, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
    )


@dataclass(frozen=True)
class SelfSignedCert:
    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> SelfSignedCert:
        """Write ``cert.pem`` and ``key.pem`` for localhost/127.0.0.1 into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        cert = (
            _builder("localhost", name, key.public_key())
            .add_extension(_LOOPBACK, critical=False)
            .sign(key, hashes.SHA256())
        )
        out = cls(directory / "cert.pem", directory / "key.pem")
        _write(cert, key, out.cert, out.key)
        return out


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA of its own: ``cert`` is what a peer trusts, ``issue()`` signs leaf certificates."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path, name: str = "mailsync dev CA") -> CertificateAuthority:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(name, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        out = cls(directory / "ca.pem", directory / "ca-key.pem")
        _write(cert, key, out.cert, out.key)
        return out

    def issue(self, directory: Path, common_name: str, *, client: bool = False) -> SelfSignedCert:
        """A certificate for loopback signed by this CA: a server's, or a client's (mTLS)."""
        directory.mkdir(parents=True, exist_ok=True)
        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        cert = (
            _builder(common_name, ca_cert.subject, key.public_key())
            .add_extension(_LOOPBACK, critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        out = SelfSignedCert(directory / f"{common_name}.pem", directory / f"{common_name}-key.pem")
        _write(cert, key, out.cert, out.key)
        return out
