"""The ``consent`` command (gateway/remote/consent.py, docs/consent.md): accepted only from the
command key of the recipient it names; bad signature, another recipient's key, an old
sequence or a bad record are refused, and nothing is recorded."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from common.command_keys import PemCommandVerifier
from drivers.mqtt import MqttLink
from gateway.config import parse_config
from gateway.consents import consent_path, read_ledger
from gateway.remote.consent import ConsentApplier
from gateway.remote.handler import CommandHandler
from gateway.remote.state import RemoteState
from protocols.command_results import Status
from region.command_sender import RegionCommandKey

HUB = "hub-consent"


def _record(recipient: str, categories: list[str], action: str = "grant") -> dict[str, Any]:
    return {
        "action": action,
        "recipient": recipient,
        "categories": categories,
        "from_ms": 1_763_800_000_000,
        "recorded_by": f"{recipient}:handler-3",
        "basis": "patient-consent",
        "recorded_ms": 1_763_800_000_000,
    }


def _no_broker() -> MqttLink:
    raise AssertionError("handle() needs no connection")


async def test_consent_commands_per_recipient_key(tmp_path: Path) -> None:
    region = RegionCommandKey.init(tmp_path / "region-key")
    muni = RegionCommandKey.init(tmp_path / "muni-key", kid="kommun-1")
    tls = {"ca_file": "/x/ca", "cert_file": "/x/c", "key_file": "/x/k"}
    config = parse_config(
        {
            "hub_id": HUB,
            "data_dir": str(tmp_path / "data"),
            "recipients": [
                {"name": "region", "host": "r.example", **tls},
                {"name": "municipality", "host": "k.example", "command_kids": [muni.kid], **tls},
            ],
        },
        path=tmp_path / "hub.toml",
    )
    keys = {k.kid: k.public_file.read_bytes() for k in (region, muni)}
    handler = CommandHandler(
        HUB,
        PemCommandVerifier(HUB, keys),
        RemoteState(tmp_path / "state.json"),
        {"consent": ConsentApplier(config)},
        _no_broker,
    )

    async def send(key: RegionCommandKey, body: dict[str, Any]) -> tuple[Status, str | None]:
        result = await handler.handle(key.build(HUB, "consent", body, expires_in_s=60)[1])
        return result.status, result.reason

    assert await send(muni, _record("municipality", ["activity"])) == (Status.APPLIED, None)
    assert await send(region, _record("region", ["vital-signs"])) == (Status.APPLIED, None)
    # One recipient cannot grant for another, in either direction.
    assert await send(muni, _record("region", ["activity"])) == (Status.REJECTED, "wrong-recipient")
    assert await send(region, _record("municipality", ["indoor-climate"])) == (
        Status.REJECTED,
        "wrong-recipient",
    )
    assert await send(region, _record("pharmacy", ["glucose"])) == (
        Status.REJECTED,
        "unknown-recipient",
    )
    assert await send(region, {**_record("region", ["x"])}) == (Status.REJECTED, "bad-consent")
    # A forged signature (a key the hub never pinned, under the municipality's kid).
    forged = RegionCommandKey.init(tmp_path / "forged", kid=muni.kid)
    assert forged.key_file.read_bytes() != muni.key_file.read_bytes()
    assert await send(forged, _record("municipality", ["indoor-climate"])) == (
        Status.REJECTED,
        "unsigned",
    )
    # An old sequence: the same message again is answered from the record, a new message
    # with an old sequence number is refused.
    command, message = muni.build(
        HUB, "consent", _record("municipality", ["glucose"]), expires_in_s=60
    )
    assert (await handler.handle(message)).status is Status.APPLIED
    old = replace(command, body=_record("municipality", ["vital-signs"]))
    assert (await handler.handle(muni.signer().sign(old))).reason == "replayed"

    ledger = read_ledger(consent_path(tmp_path / "data")).records
    assert [(r.recipient, sorted(c.value for c in r.categories)) for r in ledger] == [
        ("municipality", ["activity"]),
        ("region", ["vital-signs"]),
        ("municipality", ["glucose"]),
    ]
