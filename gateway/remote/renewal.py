"""The ``renew-cert`` command: a new key on the hub, a certificate from the region, a switch-over
that loses nothing and leaves the old certificate working if any step fails.

Two steps, each a signed command (docs/remote-management.md "renew-cert"):

1. ``{"step": "csr"}``: the hub generates a new P-256 key (``{key_file}.next``, mode 0600; the
   private key never leaves the hub) and returns a CSR for its hub id in the result's ``data``.
2. ``{"step": "install", "certificate": PEM}``: the hub checks the certificate matches the new
   key, chains to the pinned region CA, names this hub and is valid now
   (:func:`gateway.identity.check_certificate`), then proves it on a real TLS connection to
   the broker *before* touching the files in use. Only then: the old pair is kept as
   ``.prev``, the new certificate and key are renamed into place (each atomic; an interrupted
   switch is completed at the next start by :func:`recover`), and ``on_installed`` switches
   the running hub: batches are signed with the new key and the connections reconnect.

``cryptography`` (x509, through :mod:`common.pki` and :mod:`gateway.identity`) is imported
only when a step runs or an interrupted switch-over is recovered, never by the running hub
otherwise (issue #11: the 60 MB budget).

Readings are never at risk: they stay in the outbox until a PUBACK, and the receiver
de-duplicates a batch resent over the new connection by (hub, boot id, sequence).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from common.atomic import fsync_directory, write_atomic
from drivers.mqtt import MqttError, MqttLink, TlsFiles
from gateway.config import HubConfig
from gateway.remote.handler import CommandFailedError, CommandRefusedError
from protocols.commands import Command

logger = logging.getLogger(__name__)


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def pending_key_file(config: HubConfig) -> Path:
    """The new key waiting for its certificate."""
    return _sibling(config.uplink.key_file, ".next")


def _matches(key_pem: bytes, cert_pem: bytes) -> bool:
    from cryptography import x509  # noqa: PLC0415 - only while a renewal is under way
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    from common.pki import public_key_pem  # noqa: PLC0415 - imports cryptography

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        theirs = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return public_key_pem(key_pem) == theirs
    except ValueError:
        return False


def recover(config: HubConfig) -> str | None:
    """Finish a switch-over a crash interrupted (called at start); returns what it did.

    The certificate is renamed into place before the key, so the states after a crash are:
    both new (done), new cert + old key (finish: rename the new key), or nothing renamed.
    """
    up = config.uplink
    key_next = _sibling(up.key_file, ".next")
    cert_next = _sibling(up.cert_file, ".next")
    if not key_next.exists() and not cert_next.exists():
        return None  # no renewal under way: nothing to finish (and no x509 parsing)
    try:
        cert, key = up.cert_file.read_bytes(), up.key_file.read_bytes()
    except OSError:
        return None
    if _matches(key, cert):
        cert_next.unlink(missing_ok=True)
        return None
    if key_next.exists() and _matches(key_next.read_bytes(), cert):
        key_next.replace(up.key_file)
        fsync_directory(up.key_file.parent)
        logger.warning("certificate renewal: finished an interrupted switch-over")
        return "finished"
    return None


class CertificateRenewal:
    """Carries out ``renew-cert`` commands for one hub."""

    def __init__(
        self,
        config: HubConfig,
        *,
        probe: Callable[[TlsFiles], AbstractAsyncContextManager[MqttLink]],
        on_installed: Callable[[], None],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        """``probe(files)`` connects to the broker with candidate TLS files (a check only)."""
        self._config = config
        self._probe = probe
        self._on_installed = on_installed
        self._now = now

    async def __call__(self, command: Command) -> dict[str, Any]:
        """Carry out one step."""
        step = command.body.get("step")
        if step == "csr" and set(command.body) == {"step"}:
            return self._new_key_and_csr()
        certificate = command.body.get("certificate")
        if step == "install" and isinstance(certificate, str):
            return await self._install(certificate.encode())
        raise CommandRefusedError(
            "invalid-body", "body must be {'step': 'csr'} or {'step': 'install', 'certificate'}"
        )

    def _new_key_and_csr(self) -> dict[str, Any]:
        from common.pki import build_csr, new_private_key_pem  # noqa: PLC0415 - module docstring

        key_pem = new_private_key_pem()
        try:
            write_atomic(pending_key_file(self._config), key_pem, mode=0o600)
        except OSError as exc:
            raise CommandFailedError("io", f"cannot write the new key: {exc.strerror}") from None
        logger.info("certificate renewal: new key generated, CSR sent")
        return {"csr": build_csr(key_pem, self._config.hub_id).decode()}

    async def _install(self, cert_pem: bytes) -> dict[str, Any]:
        from gateway.identity import ProvisionError, check_certificate  # noqa: PLC0415

        up = self._config.uplink
        key_next = pending_key_file(self._config)
        if not key_next.exists():
            raise CommandRefusedError("no-pending-key", "send {'step': 'csr'} first")
        candidate = self._config.model_copy(
            update={"uplink": up.model_copy(update={"key_file": key_next})}
        )
        try:
            check = check_certificate(candidate, cert_pem, now=self._now())
        except ProvisionError as exc:
            raise CommandRefusedError("bad-certificate", f"{exc.reason}. {exc.hint}") from None
        cert_next = _sibling(up.cert_file, ".next")
        try:
            write_atomic(cert_next, cert_pem)
        except OSError as exc:
            raise CommandFailedError(
                "io", f"cannot write the certificate: {exc.strerror}"
            ) from None
        files = TlsFiles(up.ca_file, cert_next, key_next, up.tls_min_version)
        try:
            async with self._probe(files):
                pass
        except MqttError as exc:
            cert_next.unlink(missing_ok=True)
            raise CommandFailedError(
                "broker-refused", f"the broker refused the new certificate: {exc}"
            ) from None
        try:
            for current in (up.cert_file, up.key_file):
                # Keep the old pair (the key stays 0600: copy2 keeps the mode).
                shutil.copy2(current, _sibling(current, ".prev"))
            cert_next.replace(up.cert_file)
            key_next.replace(up.key_file)
            fsync_directory(up.key_file.parent)
        except OSError as exc:
            # recover() at the next start completes or undoes a half-made switch.
            raise CommandFailedError("io", f"switch-over failed: {exc.strerror}") from None
        self._on_installed()
        logger.info("certificate renewal: new certificate installed (%d days)", check.days_left)
        return {"not_after": check.not_after.isoformat(), "days_left": check.days_left}
