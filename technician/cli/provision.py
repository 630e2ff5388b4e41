"""``narhub init`` and ``narhub keys ...``: give the hub its configuration and identity."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.config import ConfigError
from gateway.identity import ProvisionError
from technician.cli._common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOption,
    JsonFlag,
    config_path,
    emit,
    load,
)
from technician.provision import create_key, init_hub, install_certificate, make_csr

keys_app = typer.Typer(help="The hub's private key (never leaves the hub) and certificate.")


def _fail(exc: ProvisionError, as_json: bool) -> typer.Exit:
    emit({"ok": False, "step": exc.step, "error": exc.reason, "hint": exc.hint}, as_json)
    return typer.Exit(EXIT_FAILED)


def init(
    hub_id: Annotated[str, typer.Option(help="This hub's id, as the region registered it.")],
    broker: Annotated[str, typer.Option(help="The region broker, mqtts://HOST[:PORT].")],
    ca_file: Annotated[Path, typer.Option(help="The region CA certificate (PEM) to pin.")],
    patient: Annotated[
        str | None, typer.Option(help="The patient's pseudonym from the care team.")
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Where readings are stored.")] = Path(
        "/var/lib/narhub"
    ),
    ble_backend: Annotated[
        str, typer.Option(help="bluez on a hub; sim on the virtual rig.")
    ] = "bluez",
    sim_transport: Annotated[
        str | None,
        typer.Option(help="With --ble-backend sim: the rig's radio (rig.json `hci`)."),
    ] = None,
    command_key: Annotated[
        Path | None,
        typer.Option(
            help="The region's command public key (command.pem) to pin for remote commands."
        ),
    ] = None,
    command_kid: Annotated[
        str, typer.Option(help="Its key id (command.kid from the region).")
    ] = "region-cmd-1",
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option(help="Replace an existing configuration.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Write the hub configuration and create the data directory."""
    path = config_path(config)
    try:
        result = init_hub(
            path,
            hub_id=hub_id,
            broker_url=broker,
            ca_file=ca_file,
            patient_pseudonym=patient,
            data_dir=data_dir,
            ble_backend=ble_backend,
            sim_transport=sim_transport,
            command_key=command_key,
            command_kid=command_kid,
            force=force,
        )
    except ProvisionError as exc:
        raise _fail(exc, as_json) from None
    except ConfigError as exc:
        problems = {"ok": False, "step": "init", "problems": exc.problems}
        emit({**problems, "hint": "correct the options named"}, as_json)
        raise typer.Exit(EXIT_CONFIG) from None
    emit(
        {"ok": True, "config": str(path), "hub_id": result.hub_id, "next": "narhub keys create"},
        as_json,
    )


@keys_app.command("create")
def keys_create(
    config: ConfigOption = None,
    force: Annotated[bool, typer.Option(help="Replace the existing key (re-enrol!).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Generate the hub's EC P-256 key on the hub (mode 0600, never printed)."""
    hub = load(config, as_json)
    try:
        path = create_key(hub, force=force)
    except ProvisionError as exc:
        raise _fail(exc, as_json) from None
    emit({"ok": True, "key_file": str(path), "next": "narhub keys csr"}, as_json)


@keys_app.command("csr")
def keys_csr(
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSR here (default: stdout).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A certificate signing request for the hub id, to send to the region."""
    hub = load(config, as_json)
    try:
        csr = make_csr(hub)
    except ProvisionError as exc:
        raise _fail(exc, as_json) from None
    if out is not None:
        out.write_bytes(csr)
        emit({"ok": True, "csr_file": str(out), "subject": hub.hub_id}, as_json)
    elif as_json:
        emit({"ok": True, "subject": hub.hub_id, "csr_pem": csr.decode()}, as_json)
    else:
        sys.stdout.write(csr.decode())


@keys_app.command("install-cert")
def keys_install_cert(
    cert: Path,
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a certificate (matches the key, chains to the region CA, valid now) and install it."""
    hub = load(config, as_json)
    try:
        result = install_certificate(hub, cert, now=dt.datetime.now(dt.UTC))
    except ProvisionError as exc:
        raise _fail(exc, as_json) from None
    emit(
        {
            "ok": True,
            "cert_file": str(hub.uplink.cert_file),
            "subject": result.subject,
            "not_after": result.not_after.isoformat(),
            "days_left": result.days_left,
            "next": "narhub doctor",
        },
        as_json,
    )
