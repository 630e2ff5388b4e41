"""A small region CA on disk, for pilots and tests: ``narhub region ca init|sign|revoke``.

Layout of the CA directory: ``ca.key`` (mode 0600), ``ca.crt``, ``issued/{serial}.crt`` for
every certificate signed, ``revoked.txt`` (one serial per line) and ``crl.pem``, regenerated on
every revocation for the broker's ``crlfile``. A production region runs its own PKI; this one
follows the same rules: hub certificates carry the hub id as subject CN (RFC 5280 4.1.2.6).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from common.errors import HintedError
from common.pki import CertificateAuthority, build_crl, certificate_serial
from common.signing import PemBatchVerifier
from protocols.command_topics import HUB_CLIENT_SUFFIXES
from protocols.uplink import BadSignatureError, Batch, UnknownKidError
from protocols.uplink.replay import SeenBatches
from region.broker_config import OPERATOR_USER

HUB_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
RECEIVER_ID = re.compile(r"^region-receiver[a-z0-9-]*$")


class RegionCaError(HintedError, RuntimeError):
    """A CA operation was refused; ``hint`` says what to do."""


@dataclass(frozen=True)
class RegionCa:
    """A CA directory."""

    directory: Path

    @property
    def cert_file(self) -> Path:
        """The CA certificate (what hubs pin and the broker trusts)."""
        return self.directory / "ca.crt"

    @property
    def crl_file(self) -> Path:
        """The current CRL."""
        return self.directory / "crl.pem"

    def _load(self) -> CertificateAuthority:
        try:
            return CertificateAuthority(
                (self.directory / "ca.key").read_bytes(), self.cert_file.read_bytes()
            )
        except OSError:
            raise RegionCaError(
                f"no CA in {self.directory}", "run `narhub region ca init --dir DIR`"
            ) from None

    @classmethod
    def init(cls, directory: Path, name: str, *, force: bool = False) -> RegionCa:
        """Create the CA key, certificate and an empty CRL."""
        ca_dir = cls(directory)
        if (directory / "ca.key").exists() and not force:
            raise RegionCaError(f"a CA exists in {directory}", "use it, or pass --force")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "issued").mkdir(exist_ok=True)
        ca = CertificateAuthority.create(name)
        fd = os.open(directory / "ca.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(ca.key_pem)
        ca_dir.cert_file.write_bytes(ca.cert_pem)
        (directory / "revoked.txt").write_text("")
        ca_dir.crl_file.write_bytes(build_crl(ca, []))
        return ca_dir

    def sign(self, csr_pem: bytes, *, server_names: tuple[str, ...] = ()) -> bytes:
        """Sign a CSR. Client CNs must be a hub id or ``region-receiver*``."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError:
            raise RegionCaError("not a PEM CSR", "send the output of `narhub keys csr`") from None
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(names[0].value) if names else ""
        if not server_names and not (HUB_ID.match(cn) or RECEIVER_ID.match(cn)):
            raise RegionCaError(
                f"subject CN {cn!r} is not a hub id", "hub ids are 3-63 of a-z, 0-9 and '-'"
            )
        if not server_names and _reserved(cn):
            raise RegionCaError(
                f"subject CN {cn!r} would own another client's MQTT client ids",
                f"hub ids must not end with {' or '.join(HUB_CLIENT_SUFFIXES)} nor start with "
                "'region-' (the broker binds client ids to certificate names)",
            )
        try:
            cert_pem = self._load().sign_csr(csr_pem, server_names=server_names)
        except ValueError as exc:
            raise RegionCaError(str(exc), "ask for a new CSR") from None
        serial = certificate_serial(cert_pem)
        (self.directory / "issued").mkdir(exist_ok=True)
        (self.directory / "issued" / f"{serial:x}.crt").write_bytes(cert_pem)
        return cert_pem

    def revoked(self) -> list[int]:
        """Serials revoked so far."""
        path = self.directory / "revoked.txt"
        if not path.exists():
            return []
        return [int(line, 16) for line in path.read_text().split() if line]

    def revoke(self, cert_pem: bytes) -> int:
        """Revoke a certificate this CA issued; rewrites ``crl.pem``. Returns the serial."""
        ca = self._load()
        cert = x509.load_pem_x509_certificate(cert_pem)
        issuer = x509.load_pem_x509_certificate(ca.cert_pem)
        if cert.issuer != issuer.subject:
            raise RegionCaError("this certificate was not issued by this CA", "check the file")
        serials = [*self.revoked(), cert.serial_number]
        (self.directory / "revoked.txt").write_text("".join(f"{s:x}\n" for s in serials))
        tmp = self.crl_file.with_suffix(".tmp")
        tmp.write_bytes(build_crl(ca, serials))
        tmp.replace(self.crl_file)
        return cert.serial_number


def _reserved(cn: str) -> bool:
    """Whether a hub could not have ``cn``: the broker's identity plugin lets a certificate
    use ``{cn}-cmd`` and ``{cn}-renew`` (a hub ``x-cmd`` would collide with hub ``x``), and
    the ``region-`` names belong to the region's services (region/broker_plugin.py)."""
    if RECEIVER_ID.match(cn) or cn == OPERATOR_USER:
        return False
    return cn.startswith("region-") or cn.endswith(HUB_CLIENT_SUFFIXES)


def _is_hub(cn: str) -> bool:
    return bool(HUB_ID.match(cn)) and not RECEIVER_ID.match(cn) and cn != OPERATOR_USER


def issued_hubs(ca: RegionCa) -> set[str]:
    """Every hub id this CA ever issued a certificate to, revoked ones included (a hub
    whose certificate was revoked still existed: its readings may still be filed)."""
    hubs = set()
    for path in sorted((ca.directory / "issued").glob("*.crt")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(names[0].value) if names else ""
        if _is_hub(cn):
            hubs.add(cn)
    return hubs


def hub_keys(ca: RegionCa) -> dict[str, tuple[bytes, ...]]:
    """Public keys of the hubs this CA issued and has not revoked: kid (hub id) -> PEMs,
    newest certificate first.

    The receiver verifies each batch against the keys of the certificates that name its kid.
    Every unrevoked key of a hub is kept, expired or not: after a renewal the hub's outbox
    still holds batches its old key signed, and a batch signed while its certificate was
    valid stays verifiable (revocation, not expiry, withdraws trust). Receivers and the
    operator are not hubs.
    """
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    revoked = set(ca.revoked())
    found: dict[str, list[tuple[dt.datetime, int, bytes]]] = {}
    for path in sorted((ca.directory / "issued").glob("*.crt")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(names[0].value) if names else ""
        if cert.serial_number in revoked or not _is_hub(cn):
            continue
        pem = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        found.setdefault(cn, []).append((cert.not_valid_before_utc, cert.serial_number, pem))
    return {
        hub: tuple(pem for *_, pem in sorted(certs, reverse=True)) for hub, certs in found.items()
    }


class CaVerifier(PemBatchVerifier):
    """A batch verifier over the CA's issued, unrevoked hub certificates, kept current.

    The receiver runs for months while hubs are provisioned, renew their certificates
    (``narhub region send renew``) and get revoked. The key list is reloaded when the CA's
    issued certificates or revocation list changed: at once when a batch names an unknown hub
    or fails every key held (a renewal the receiver has not seen yet; the batch is then
    verified again), and otherwise at most every ``recheck_s`` seconds (a revocation).
    """

    def __init__(self, ca: RegionCa, *, recheck_s: float = 30.0) -> None:
        self._ca = ca
        self._recheck_s = recheck_s
        self._listing = self._current_listing()
        self._checked = time.monotonic()
        super().__init__(hub_keys(ca))

    def _current_listing(self) -> tuple[tuple[str, int, int], ...]:
        entries = [
            *(self._ca.directory / "issued").glob("*.crt"),
            self._ca.directory / "revoked.txt",
        ]
        listing = []
        for path in entries:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            listing.append((path.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(listing))

    def _reload_if_changed(self) -> bool:
        self._checked = time.monotonic()
        listing = self._current_listing()
        if listing == self._listing:
            return False
        self._listing = listing
        self.replace_keys(hub_keys(self._ca))
        return True

    def verify(self, message: bytes, *, replay: SeenBatches | None = None) -> Batch:
        """:meth:`BatchVerifier.verify`, reloading the keys first when the CA changed."""
        if time.monotonic() - self._checked >= self._recheck_s:
            self._reload_if_changed()
        try:
            return super().verify(message, replay=replay)
        except (UnknownKidError, BadSignatureError):
            if not self._reload_if_changed():
                raise
        return super().verify(message, replay=replay)
