"""``narhub doctor``, ``narhub uplink test`` and ``narhub queue ...``: is the hub working?"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer

from common.signing import PemBatchSigner
from drivers.mqtt import REASON_FAILURE_THRESHOLD, MqttError, MqttLink, TlsFiles
from gateway.outbox import Outbox, StoreBusyError
from protocols.uplink import (
    BatchHeader,
    Priority,
    SigningKeyError,
    WireReading,
    encode_body,
)
from technician.cli._common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    ConfigOption,
    JsonFlag,
    config_path,
    console,
    emit,
    load,
)
from technician.doctor import run_checks

uplink_app = typer.Typer(help="The connection to the region.")
queue_app = typer.Typer(help="What waits in the outbox.")

#: Telemetry code of the uplink self-test reading (narhub private range,
#: see gateway/board_source.py).
UPLINK_TEST_CODE = 2 * 65536 + 0xF100
UPLINK_TEST_FLAG = "uplink-test"


def doctor(config: ConfigOption = None, as_json: JsonFlag = False) -> None:
    """Check everything, one line per check with a fix; exit 0 only when all pass.

    Exit 1 when a check fails, 3 when the configuration itself is missing or invalid.
    """
    checks = asyncio.run(run_checks(config_path(config), now=dt.datetime.now(dt.UTC)))
    ok = all(c.ok for c in checks)
    if as_json:
        emit({"ok": ok, "checks": [c.to_json() for c in checks]}, as_json=True)
    else:
        out = console()
        for c in checks:
            mark = "[green]ok  [/]" if c.ok else "[red]FAIL[/]"
            out.print(f"{mark} {c.name:<12} {c.detail}", highlight=False)
            if c.hint:
                out.print(f"     {'':<12} -> {c.hint}", highlight=False)
    if not ok:
        config_failed = checks[0].name == "config" and not checks[0].ok
        raise typer.Exit(EXIT_CONFIG if config_failed else EXIT_FAILED)


@uplink_app.command("test")
def uplink_test(
    config: ConfigOption = None,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds to wait.")] = 15.0,
    as_json: JsonFlag = False,
) -> None:
    """Send a signed test batch to the region and wait for the broker's acknowledgement."""
    hub = load(config, as_json)
    up = hub.uplink
    now_ms = time.time_ns() // 1_000_000
    reading = WireReading(
        "hub/uplink-test",
        UPLINK_TEST_CODE,
        "1",
        now_ms,
        Decimal(1),
        flags=frozenset({UPLINK_TEST_FLAG}),
        device=hub.hub_id,
    )
    header = BatchHeader(
        hub.hub_id, f"test-{uuid.uuid4().hex[:8]}", 0, now_ms, Priority.TELEMETRY, 1
    )
    try:
        message = PemBatchSigner(hub.hub_id, up.key_file.read_bytes()).sign(
            encode_body(header, [reading])
        )
    except OSError:
        emit(
            {"ok": False, "error": f"no key at {up.key_file}", "hint": "narhub keys create"},
            as_json,
        )
        raise typer.Exit(EXIT_FAILED) from None
    except SigningKeyError as exc:
        emit(
            {
                "ok": False,
                "error": f"{up.key_file}: {exc.reason}",
                "hint": "narhub keys create (a P-256 key, unencrypted)",
            },
            as_json,
        )
        raise typer.Exit(EXIT_FAILED) from None

    async def send() -> tuple[int, float]:
        link = MqttLink(
            up.host,
            up.port,
            client_id=hub.hub_id,
            timeout_s=timeout_s,
            tls=TlsFiles(up.ca_file, up.cert_file, up.key_file, up.tls_min_version),
        )
        started = time.monotonic()
        async with link:
            reason = await link.publish(f"narhub/v1/{hub.hub_id}/up/telemetry", message)
        return reason, (time.monotonic() - started) * 1000

    try:
        reason, elapsed_ms = asyncio.run(send())
    except (MqttError, OSError) as exc:
        emit({"ok": False, "error": str(exc), "hint": "run `narhub doctor`"}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    ok = reason < REASON_FAILURE_THRESHOLD
    emit(
        {
            "ok": ok,
            "reason_code": reason,
            "bytes": len(message),
            "round_trip_ms": round(elapsed_ms, 1),
        },
        as_json,
    )
    if not ok:
        raise typer.Exit(EXIT_FAILED)


def _outbox(hub_data_dir: Path, as_json: bool) -> Outbox:
    path = hub_data_dir / "outbox.sqlite3"
    if not path.exists():
        emit({"ok": False, "error": f"no outbox at {path}", "hint": "has narhub run yet?"}, as_json)
        raise typer.Exit(EXIT_FAILED)
    try:
        return Outbox(path, busy_timeout_s=1.0)
    except StoreBusyError:
        emit(
            {
                "ok": False,
                "error": f"{path} is held by the running hub",
                "hint": "see `narhub status`, or stop narhub (systemctl stop narhub) first",
            },
            as_json,
        )
        raise typer.Exit(EXIT_FAILED) from None


@queue_app.command("stats")
def queue_stats(config: ConfigOption = None, as_json: JsonFlag = False) -> None:
    """Queue depth per priority, rejected batches and the age of the oldest unsent reading."""
    hub = load(config, as_json)
    outbox = _outbox(hub.data_dir, as_json)
    try:
        counts = outbox.counts()
        batches = outbox.all_batches()
        oldest = outbox.oldest_unsent_ms()
    finally:
        outbox.close()
    per_priority = {p.topic_name: 0 for p in Priority}
    rejected = []
    for batch, reason in batches:
        if reason is None:
            per_priority[batch.priority.topic_name] += 1
        else:
            rejected.append({"seq": batch.seq, "reason_code": reason})
    emit(
        {
            **counts,
            "pending_batches_by_priority": per_priority,
            "rejected": rejected,
            "oldest_unsent_ms": oldest,
        },
        as_json,
    )


@queue_app.command("export")
def queue_export(
    out: Annotated[Path, typer.Option(help="JSONL file: one signed batch per line.")],
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Copy every stored batch (still signed) to a file the region can ingest; nothing deleted."""
    hub = load(config, as_json)
    outbox = _outbox(hub.data_dir, as_json)
    try:
        batches = outbox.all_batches()
    finally:
        outbox.close()
    with out.open("w", encoding="utf-8") as handle:
        for batch, reason in batches:
            handle.write(
                json.dumps(
                    {
                        "seq": batch.seq,
                        "priority": batch.priority.topic_name,
                        "rejected_reason": reason,
                        "cose_sign1_b64": base64.b64encode(batch.message).decode(),
                    }
                )
                + "\n"
            )
    emit({"ok": True, "file": str(out), "batches": len(batches)}, as_json)
