"""What a technician does to give a hub its identity: config, key, CSR, certificate.

The private key is generated on the hub (P-256, file mode 0600) and never printed or sent;
the region sees only the CSR (PKCS#10, RFC 2986) and returns a certificate whose subject common
name is the hub id. ``install_certificate`` checks what a TLS handshake would reject later:
wrong key, wrong CA, not yet valid or expired.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from common.pki import build_csr, new_private_key_pem
from gateway.config import HubConfig, UplinkConfig, render_config
from gateway.identity import CertificateCheck, ProvisionError, check_certificate, hub_key_pem


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtts://host[:port]`` -> (host, port); only TLS URLs are accepted."""
    parts = urlsplit(url)
    if parts.scheme != "mqtts" or not parts.hostname:
        raise ProvisionError(
            "init", f"broker URL {url!r} is not mqtts://HOST[:PORT]", "use the URL the region gave"
        )
    try:
        port = parts.port or 8883
    except ValueError:
        raise ProvisionError("init", f"bad port in {url!r}", "use a port 1-65535") from None
    return parts.hostname, port


def init_hub(
    config_path: Path,
    *,
    hub_id: str,
    broker_url: str,
    ca_file: Path,
    patient_pseudonym: str | None,
    data_dir: Path,
    ble_backend: str = "bluez",
    sim_transport: str | None = None,
    command_key: Path | None = None,
    command_kid: str = "region-cmd-1",
    force: bool = False,
) -> HubConfig:
    """Write a new configuration (and the data directory); refuses to overwrite unless forced.

    The region CA is copied next to the configuration and pinned there. ``sim_transport``
    (with ``ble_backend="sim"``): the virtual rig's radio, ``tcp-client:127.0.0.1:PORT``.
    ``command_key``: the region's command-signing public key (``command.pem`` from ``narhub
    region command-key init``), copied next to the configuration and pinned under
    ``command_kid`` in ``[remote]`` (docs/remote-management.md); without it the hub takes no
    remote commands.
    """
    if config_path.exists() and not force:
        raise ProvisionError(
            "init", f"{config_path} exists", "pass --force to replace it (keys are kept)"
        )
    try:
        ca_pem = ca_file.read_bytes()
        x509.load_pem_x509_certificate(ca_pem)
    except OSError as exc:
        raise ProvisionError(
            "init",
            f"cannot read CA file {ca_file}: {exc.strerror}",
            "check the path of the region CA certificate",
        ) from None
    except ValueError:
        raise ProvisionError(
            "init", f"{ca_file} is not a PEM certificate", "use the region CA certificate (PEM)"
        ) from None
    host, port = parse_broker_url(broker_url)
    command_pem = None if command_key is None else _command_key_pem(command_key)
    directory = config_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    pinned_ca = directory / "region-ca.crt"
    if pinned_ca.resolve() != ca_file.resolve():
        shutil.copyfile(ca_file, pinned_ca)
    remote: dict[str, Any] = {}
    if command_pem is not None:
        pinned_command = directory / f"region-command-{command_kid}.pem"
        pinned_command.write_bytes(command_pem)
        remote = {"remote": {"command_keys": {command_kid: str(pinned_command)}}}
    from gateway.config import parse_config  # noqa: PLC0415 - avoid a cycle at import

    config = parse_config(
        {
            "hub_id": hub_id,
            "data_dir": str(data_dir),
            **({"patient_pseudonym": patient_pseudonym} if patient_pseudonym else {}),
            "ble": {
                "backend": ble_backend,
                **({"sim_transport": sim_transport} if sim_transport else {}),
            },
            "uplink": UplinkConfig(
                host=host,
                port=port,
                ca_file=pinned_ca,
                cert_file=directory / "hub.crt",
                key_file=directory / "hub.key",
            ).model_dump(mode="json"),
            **remote,
        },
        path=config_path,
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = config_path.with_suffix(".tmp")
    tmp.write_text(render_config(config), encoding="utf-8")
    tmp.replace(config_path)
    return config


def _command_key_pem(path: Path) -> bytes:
    """The region's command public key: a P-256 public key in PEM (ES256, RFC 9053 2.1)."""
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ProvisionError(
            "init",
            f"cannot read command key {path}: {exc.strerror}",
            "use the region's command.pem (narhub region command-key init)",
        ) from None
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ProvisionError(
            "init",
            f"{path} is not a P-256 public key in PEM",
            "use the region's command.pem (never its command.key)",
        )
    return pem


def create_key(config: HubConfig, *, force: bool = False) -> Path:
    """Generate the hub's P-256 key at ``uplink.key_file`` with mode 0600."""
    path = config.uplink.key_file
    if path.exists() and not force:
        raise ProvisionError(
            "keys create",
            f"{path} exists",
            "a hub keeps its key; pass --force only to replace a compromised key",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(new_private_key_pem())
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return path


def make_csr(config: HubConfig) -> bytes:
    """A CSR for the hub id, signed with the hub key (PEM)."""
    return build_csr(hub_key_pem(config), config.hub_id)


def install_certificate(
    config: HubConfig, cert_file: Path, *, now: dt.datetime
) -> CertificateCheck:
    """Check a certificate (:func:`check_certificate`), then install it at ``uplink.cert_file``."""
    try:
        cert_pem = cert_file.read_bytes()
    except OSError as exc:
        raise ProvisionError(
            "keys install-cert", f"cannot read {cert_file}: {exc.strerror}", "check the path"
        ) from None
    result = check_certificate(config, cert_pem, now=now)
    target = config.uplink.cert_file
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(cert_pem)
    tmp.replace(target)
    return result
