"""Throw-away TLS material for tests: a private CA, a server certificate for the loopback
listener, client certificates. Made with ``cryptography`` (a core dependency), never the
system's trust store.

Keys are EC P-256 (fast to make). Certificates are valid from one hour ago for two days and
carry the extensions a strict verifier wants (basic constraints and key usage marked critical,
subject and authority key identifiers). The server certificate names ``IP:127.0.0.1`` and
``DNS:localhost``, so a client that checks the host name accepts ``127.0.0.1``. Key files are
written with mode 0600, unencrypted.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A certificate and its key, as PEM files."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class TestCA:
    """A private certificate authority; ``ca_file`` is its certificate (the trust anchor)."""

    __test__ = False  # not a pytest test class, despite the name

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    ca_file: Path

    @classmethod
    def create(cls, directory: Path, name: str = "shuxin test CA") -> TestCA:
        """Make a CA and write its certificate to ``directory/<slug>.crt``."""
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        public = key.public_key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca_file = directory / (name.replace(" ", "-") + ".crt")
        ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert, ca_file)

    def issue(self, directory: Path, stem: str, *, server: bool) -> IssuedCert:
        """Issue a server (``127.0.0.1``/``localhost``) or client certificate named ``stem``.

        Writes ``directory/<stem>.crt`` and ``directory/<stem>.key``.
        """
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        public = key.public_key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name("localhost" if server else stem))
            .issuer_name(self.cert.subject)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        issued = IssuedCert(directory / f"{stem}.crt", directory / f"{stem}.key")
        issued.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, issued.key_file)
        return issued


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """Everything a TLS test broker and its clients need, under one directory."""

    ca: TestCA
    server: IssuedCert
    client: IssuedCert

    @property
    def ca_file(self) -> Path:
        """The CA certificate clients verify the broker against."""
        return self.ca.ca_file


def make_broker_tls(directory: Path) -> BrokerTls:
    """A fresh CA, a server certificate for ``127.0.0.1`` and one client certificate."""
    ca = TestCA.create(directory)
    return BrokerTls(
        ca, ca.issue(directory, "server", server=True), ca.issue(directory, "client", server=False)
    )
