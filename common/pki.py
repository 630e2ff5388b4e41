"""Keys and X.509 certificates: hub keys, CSRs and a small region CA for pilots and tests.

P-256 keys throughout (the curve a TPM or ATECC608 secure element holds; RFC 5480), so that
the same key signs COSE batches (ES256) and authenticates the TLS session. A hub's private
key is generated on the hub and never leaves it: the region only ever sees its CSR.
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


def new_private_key_pem() -> bytes:
    """A new P-256 private key, PKCS#8 PEM (unencrypted: protect it with file permissions)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("expected an EC private key")
    return key


def public_key_pem(private_key_pem: bytes) -> bytes:
    """The SubjectPublicKeyInfo PEM of a private key."""
    return (
        _load_key(private_key_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def certificate_public_key_pem(cert_pem: bytes) -> bytes:
    """The public key PEM inside a certificate (what the region verifies batches with)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_common_name(cert_pem: bytes) -> str:
    """The subject common name (for a hub certificate: the hub id)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise ValueError("certificate has no common name")
    value = names[0].value
    return value if isinstance(value, str) else value.decode()


def build_csr(private_key_pem: bytes, common_name: str) -> bytes:
    """A PKCS#10 certificate signing request for ``common_name`` (the hub id), PEM."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(_load_key(private_key_pem), hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class CertificateAuthority:
    """A region CA: its key and self-signed certificate, PEM."""

    key_pem: bytes
    cert_pem: bytes

    @classmethod
    def create(cls, common_name: str, *, valid_days: int = 3650) -> CertificateAuthority:
        """A new self-signed P-256 CA."""
        key_pem = new_private_key_pem()
        key = _load_key(key_pem)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=valid_days))
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key_pem, cert.public_bytes(serialization.Encoding.PEM))

    def sign_csr(
        self,
        csr_pem: bytes,
        *,
        server_names: tuple[str, ...] = (),
        valid_days: int = 825,
    ) -> bytes:
        """Issue a certificate for a CSR; with ``server_names`` it is a TLS server certificate.

        Client certificates (hubs, receivers) carry the CSR's common name as the subject: the
        broker uses it as the MQTT identity (``use_identity_as_username``).
        """
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            raise ValueError("CSR signature is invalid")
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        ca_key = _load_key(self.key_pem)
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(ca_cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        )
        if server_names:
            alt: list[x509.GeneralName] = []
            for name in server_names:
                try:
                    alt.append(x509.IPAddress(ipaddress.ip_address(name)))
                except ValueError:
                    alt.append(x509.DNSName(name))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
            usage = ExtendedKeyUsageOID.SERVER_AUTH
        else:
            usage = ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM)


def build_crl(
    ca: CertificateAuthority, revoked_serials: list[int], *, next_update_days: int = 30
) -> bytes:
    """A CRL (RFC 5280 section 5) signed by the CA, listing ``revoked_serials`` (PEM)."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=next_update_days))
    )
    for serial in sorted(set(revoked_serials)):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    crl = builder.sign(_load_key(ca.key_pem), hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def certificate_serial(cert_pem: bytes) -> int:
    """The serial number of a certificate."""
    return x509.load_pem_x509_certificate(cert_pem).serial_number


@dataclass(frozen=True)
class Identity:
    """Files of one TLS identity on disk."""

    cert_file: Path
    key_file: Path


def issue_identity(
    ca: CertificateAuthority,
    directory: Path,
    name: str,
    *,
    server_names: tuple[str, ...] = (),
) -> Identity:
    """Generate a key, a CSR and a certificate for ``name`` and write them (key mode 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    key_pem = new_private_key_pem()
    cert_pem = ca.sign_csr(build_csr(key_pem, name), server_names=server_names)
    key_file = directory / f"{name}.key"
    cert_file = directory / f"{name}.crt"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    cert_file.write_bytes(cert_pem)
    return Identity(cert_file, key_file)
