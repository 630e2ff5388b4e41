"""``narhub region ...``: the region side: a pilot CA, the broker config, the receiver."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from drivers.mqtt import MqttError, MqttLink, TlsFiles
from gateway.cli._common import EXIT_FAILED, JsonFlag, emit
from gateway.region.broker_config import BrokerTls, acl_text, mosquitto_conf
from gateway.region.ca import RegionCa, RegionCaError, hub_keys
from gateway.region.receiver import RECEIVER_NAME, Receiver
from protocols.uplink import BatchVerifier

app = typer.Typer(help="The region: pilot CA, broker configuration, reference receiver.")
ca_app = typer.Typer(help="A small region CA for pilots and tests.")
app.add_typer(ca_app, name="ca")

CaDir = Annotated[Path, typer.Option("--dir", help="The CA directory.")]


def _fail(exc: RegionCaError, as_json: bool) -> typer.Exit:
    emit({"ok": False, "error": exc.reason, "hint": exc.hint}, as_json)
    return typer.Exit(EXIT_FAILED)


@ca_app.command("init")
def ca_init(
    directory: CaDir,
    name: Annotated[str, typer.Option(help="The CA's common name.")] = "narhub region CA",
    force: Annotated[bool, typer.Option(help="Replace an existing CA.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Create the CA key (0600), certificate and an empty CRL."""
    try:
        ca = RegionCa.init(directory, name, force=force)
    except RegionCaError as exc:
        raise _fail(exc, as_json) from None
    emit({"ok": True, "ca_cert": str(ca.cert_file), "crl": str(ca.crl_file)}, as_json)


@ca_app.command("sign")
def ca_sign(
    csr: Path,
    directory: CaDir,
    out: Annotated[Path, typer.Option(help="Where to write the certificate.")],
    server_name: Annotated[
        list[str] | None, typer.Option(help="Issue a broker (server) certificate for NAME.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign a hub's (or receiver's, or broker's) CSR; the hub id is the subject CN."""
    try:
        cert = RegionCa(directory).sign(csr.read_bytes(), server_names=tuple(server_name or ()))
    except OSError as exc:
        emit({"ok": False, "error": f"cannot read {csr}: {exc.strerror}"}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    except RegionCaError as exc:
        raise _fail(exc, as_json) from None
    out.write_bytes(cert)
    emit({"ok": True, "cert": str(out)}, as_json)


@ca_app.command("revoke")
def ca_revoke(cert: Path, directory: CaDir, as_json: JsonFlag = False) -> None:
    """Revoke a certificate and rewrite the CRL (restart or reload the broker to apply)."""
    try:
        serial = RegionCa(directory).revoke(cert.read_bytes())
    except RegionCaError as exc:
        raise _fail(exc, as_json) from None
    emit({"ok": True, "serial": f"{serial:x}", "crl": str(RegionCa(directory).crl_file)}, as_json)


@app.command("broker-config")
def broker_config(
    ca_dir: Annotated[Path, typer.Option(help="The region CA directory.")],
    cert: Annotated[Path, typer.Option(help="The broker's certificate.")],
    key: Annotated[Path, typer.Option(help="The broker's key.")],
    out_dir: Annotated[Path, typer.Option(help="Where to write mosquitto.conf and acl.")],
    port: int = 8883,
    bind: str = "0.0.0.0",  # noqa: S104 - a broker listens on the network by design
    persistence: Annotated[Path | None, typer.Option(help="Persistence directory.")] = None,
    receiver: Annotated[
        list[str] | None,
        typer.Option(help="Certificate CN of a receiver allowed to read every hub (repeat)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a Mosquitto configuration: TLS 1.3, client certificates, CRL, per-hub ACL."""
    ca = RegionCa(ca_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    acl = out_dir / "acl"
    acl.write_text(acl_text(tuple(receiver or [RECEIVER_NAME])))
    tls = BrokerTls(ca.cert_file, cert, key, ca.crl_file if ca.crl_file.exists() else None)
    conf = out_dir / "mosquitto.conf"
    conf.write_text(
        mosquitto_conf(port=port, bind=bind, tls=tls, acl_file=acl, persistence_dir=persistence)
    )
    emit({"ok": True, "config": str(conf), "acl": str(acl)}, as_json)


@app.command("ingest")
def ingest(
    ca_dir: Annotated[Path, typer.Option(help="The region CA directory (hub certificates).")],
    host: Annotated[str, typer.Option(help="The broker host.")],
    cert: Annotated[Path, typer.Option(help="This receiver's certificate (CN region-receiver*).")],
    key: Annotated[Path, typer.Option(help="This receiver's key.")],
    out: Annotated[Path, typer.Option(help="FHIR Observations, NDJSON (appended).")],
    state: Annotated[Path, typer.Option(help="De-duplication database.")],
    port: int = 8883,
    client_id: Annotated[
        str, typer.Option(help="Stable per receiver: its broker session survives restarts.")
    ] = f"{RECEIVER_NAME}-1",
) -> None:
    """Receive batches on the shared subscription, verify, de-duplicate, write FHIR NDJSON."""
    ca = RegionCa(ca_dir)
    verifier = BatchVerifier(hub_keys(ca))
    receiver = Receiver(verifier, state, out)
    tls = TlsFiles(ca.cert_file, cert, key)

    def connect() -> MqttLink:
        return MqttLink(
            host, port, client_id=client_id, tls=tls, manual_ack=True, session_expiry_s=7 * 86400
        )

    try:
        asyncio.run(receiver.run(connect))
    except MqttError as exc:
        emit({"ok": False, "error": str(exc)}, as_json=False)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        receiver.close()
