"""The hub's own identity checks: its key file and the certificate the region gave it.

Used at the technician's visit (``narhub keys install-cert``, ``narhub doctor``) and by remote
certificate renewal on the running hub; ``cryptography`` (x509) is imported only here and in
:mod:`common.pki`, never on the service's start-up path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from common.pki import certificate_common_name, public_key_pem
from gateway.config import HubConfig


class ProvisionError(RuntimeError):
    """A provisioning step failed; ``hint`` says what the technician should do."""

    def __init__(self, step: str, reason: str, hint: str) -> None:
        self.step = step
        self.reason = reason
        self.hint = hint
        super().__init__(f"{step}: {reason}. {hint}")


def hub_key_pem(config: HubConfig) -> bytes:
    """The hub's private key (PEM) from ``uplink.key_file``; never logged or sent."""
    try:
        return config.uplink.key_file.read_bytes()
    except OSError:
        raise ProvisionError(
            "keys", f"no key at {config.uplink.key_file}", "run `narhub keys create`"
        ) from None


@dataclass(frozen=True)
class CertificateCheck:
    """What ``install_certificate`` found."""

    subject: str
    not_after: dt.datetime
    days_left: int


def check_certificate(config: HubConfig, cert_pem: bytes, *, now: dt.datetime) -> CertificateCheck:
    """Matches the key, chains to the pinned CA, names this hub, and is valid now."""
    step = "certificate"
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ProvisionError(
            step, "not a PEM certificate", "use the file the region sent"
        ) from None
    own = public_key_pem(hub_key_pem(config))
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if own != theirs:
        raise ProvisionError(
            step,
            "the certificate is for another key",
            "send this hub's CSR (`narhub keys csr`) to the region again",
        )
    try:
        ca = x509.load_pem_x509_certificate(config.uplink.ca_file.read_bytes())
        cert.verify_directly_issued_by(ca)
    except OSError:
        raise ProvisionError(
            step,
            f"cannot read the region CA {config.uplink.ca_file}",
            "run `narhub init` again with the region CA",
        ) from None
    except (ValueError, TypeError, InvalidSignature):
        raise ProvisionError(
            step,
            "the certificate was not issued by the pinned region CA",
            "check that the region signed it with the CA given to `narhub init`",
        ) from None
    subject = certificate_common_name(cert_pem)
    if subject != config.hub_id:
        raise ProvisionError(
            step,
            f"the certificate names {subject!r}, not {config.hub_id!r}",
            "the broker uses the name as identity: ask for a certificate for this hub",
        )
    if now < cert.not_valid_before_utc:
        raise ProvisionError(
            step,
            f"not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z",
            "check the hub clock (`narhub doctor`)",
        )
    if now >= cert.not_valid_after_utc:
        raise ProvisionError(
            step,
            f"expired {cert.not_valid_after_utc:%Y-%m-%d}",
            "ask the region for a new certificate",
        )
    days_left = (cert.not_valid_after_utc - now).days
    return CertificateCheck(subject, cert.not_valid_after_utc, days_left)
