"""``narhub ble scan|pair`` and ``narhub devices list|remove``: the patient's devices."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import typer

from drivers.ble import BleBackend
from drivers.ble.discovery import HEALTH_SERVICES, Advertiser, discover
from drivers.ble.pairing import PairingInput, PasskeyFormatError
from gateway.ble_backend import make_ble_backend
from gateway.config import HubConfig
from technician.cli._common import (
    EXIT_FAILED,
    ConfigOption,
    JsonFlag,
    console,
    emit,
    load,
    refused,
    save,
)
from technician.pairing import (
    PairingError,
    PairingResult,
    pair_device,
    with_device,
    with_user_index,
    without_device,
)

ble_app = typer.Typer(help="Bluetooth: find and pair the patient's devices.")
devices_app = typer.Typer(help="The paired (allowlisted) devices.")
KINDS = sorted(set(HEALTH_SERVICES.values()))


@contextlib.asynccontextmanager
async def _backend(hub: HubConfig) -> AsyncIterator[BleBackend]:
    """The configured backend; on the virtual rig, its radio connection is closed after use."""
    backend = make_ble_backend(hub.ble)
    if hub.ble.backend != "sim" or hub.ble.sim_transport is None:
        yield backend
        return
    try:
        yield backend
    finally:
        await backend.aclose()


async def _discover(hub: HubConfig, duration_s: float) -> list[Advertiser]:
    async with _backend(hub) as backend:
        return await discover(backend, duration_s=duration_s)


async def _pair(
    hub: HubConfig, address: str, kind: str, timeout_s: float, pairing: PairingInput
) -> PairingResult:
    async with _backend(hub) as backend:
        return await pair_device(backend, address, kind, timeout_s=timeout_s, pairing=pairing)


def _pairing_input(passkey: bool, passkey_file: Path | None) -> PairingInput:
    """How the technician answers the device: a passkey file, prompts, or nothing."""
    if passkey_file is not None:
        return PairingInput.from_file(passkey_file)
    if passkey:
        return PairingInput.asking(
            lambda _address: typer.prompt("Passkey shown on the device", err=True),
            lambda _address, number: typer.confirm(f"Does the device show {number:06d}?", err=True),
        )
    return PairingInput()


@ble_app.command("scan")
def ble_scan(
    config: ConfigOption = None,
    duration_s: Annotated[float, typer.Option("--duration", help="Seconds to listen.")] = 10.0,
    as_json: JsonFlag = False,
) -> None:
    """Every device in range: name, address, signal, health services, already paired."""
    hub = load(config, as_json)
    paired = {d.address.upper() for d in hub.ble.devices}
    out = console()
    if out.is_terminal and not as_json:  # progress on a TTY only
        with out.status(f"scanning for {duration_s:g} s ..."):
            found = asyncio.run(_discover(hub, duration_s))
    else:
        found = asyncio.run(_discover(hub, duration_s))
    rows = [
        {
            "address": a.address,
            "name": a.name,
            "rssi": a.rssi,
            "kinds": list(a.kinds),
            "paired": a.address in paired,
        }
        for a in found
    ]
    if as_json:
        emit({"devices": rows}, as_json=True)
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} devices in range")
    for column in ("address", "name", "signal", "health services", "paired"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["address"]),
            str(row["name"] or ""),
            f"{row['rssi']} dBm",
            ", ".join(row["kinds"]) or "-",  # type: ignore[arg-type]
            "yes" if row["paired"] else "",
        )
    out.print(table)


@ble_app.command("pair")
def ble_pair(
    address: str,
    kind: Annotated[str, typer.Option(help=f"One of: {', '.join(KINDS)}.")],
    patient: Annotated[
        str | None, typer.Option(help="The patient's pseudonym (must match the hub's).")
    ] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 60.0,
    passkey: Annotated[
        bool,
        typer.Option(
            "--passkey",
            help="Ask for the 6-digit passkey the device shows (and to confirm a number).",
        ),
    ] = False,
    passkey_file: Annotated[
        Path | None,
        typer.Option("--passkey-file", help="A file holding the device's fixed passkey."),
    ] = None,
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Bond, read Device Information, set the clock, take a test reading, allowlist it."""
    hub = load(config, as_json)
    if kind not in KINDS:
        emit({"ok": False, "error": f"unknown kind {kind!r}", "hint": f"one of {KINDS}"}, as_json)
        raise typer.Exit(2)
    if patient is not None and hub.patient_pseudonym not in {None, patient}:
        emit(
            {
                "ok": False,
                "error": "this hub serves another patient",
                "hint": "check the pseudonym, or `narhub init --force` for a new patient",
            },
            as_json,
        )
        raise typer.Exit(EXIT_FAILED)
    try:
        pairing = _pairing_input(passkey, passkey_file)
    except PasskeyFormatError as exc:
        emit({"ok": False, "error": str(exc), "hint": "write the 6-digit number"}, as_json)
        raise typer.Exit(2) from None
    out = console()
    waiting = (
        out.status(f"pairing: take a measurement on the {kind} now ...")
        if out.is_terminal and not as_json and not passkey  # progress on a TTY, no prompts
        else contextlib.nullcontext()
    )
    try:
        with waiting:
            result = asyncio.run(_pair(hub, address, kind, timeout_s, pairing))
    except PairingError as exc:
        raise refused(exc, as_json) from None
    updated = with_device(hub, address, kind, result)
    if patient is not None:
        updated = updated.model_copy(update={"patient_pseudonym": patient})
    save(updated, config)
    emit(
        {
            "ok": True,
            **result.to_json(),
            "note": "paired and allowlisted; restart narhub to start collecting",
        },
        as_json,
    )


@devices_app.command("list")
def devices_list(config: ConfigOption = None, as_json: JsonFlag = False) -> None:
    """The paired devices (address, kind, bonding)."""
    hub = load(config, as_json)
    emit({"devices": [d.model_dump(mode="json") for d in hub.ble.devices]}, as_json)


@devices_app.command("user-index")
def devices_user_index(
    address: str,
    index: Annotated[
        int | None, typer.Argument(help="the patient's user slot (0-254); omit: not shared")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Say which user slot of a shared cuff or scale is the patient's (other slots'
    readings are then not forwarded, and are counted)."""
    hub = load(config, as_json)
    try:
        updated = with_user_index(hub, address, index)
    except PairingError as exc:
        raise refused(exc, as_json) from None
    except ValueError as exc:
        emit({"ok": False, "error": str(exc), "hint": "a user index is 0 to 254"}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    save(updated, config)
    emit({"ok": True, "address": address.upper(), "user_index": index}, as_json)


@devices_app.command("remove")
def devices_remove(address: str, config: ConfigOption = None, as_json: JsonFlag = False) -> None:
    """Remove a device from the allowlist (its stored readings are kept and still sent)."""
    hub = load(config, as_json)
    try:
        updated = without_device(hub, address)
    except PairingError as exc:
        raise refused(exc, as_json) from None
    save(updated, config)
    emit({"ok": True, "removed": address.upper(), "remaining": len(updated.ble.devices)}, as_json)
