"""``narhub consent show|grant|withdraw``: the patient's consent per recipient (docs/consent.md).

The technician records at the visit what the patient (or their representative) agreed to:
which data categories each care organisation may receive. The record goes to the hub's
consent ledger (gateway/consents.py); the running hub applies it at its next batch, and a
withdrawal removes that recipient's queued data of the categories.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from common.consent import new_record
from gateway.consents import ConsentFileError, append_record, consent_path, read_ledger
from protocols.categories import DataCategory
from protocols.consent import BASES, ConsentError, allowed_now
from technician.cli._common import EXIT_CONFIG, EXIT_FAILED, ConfigOption, JsonFlag, emit, load

app = typer.Typer(help="The patient's consent: which data each recipient may receive.")

CategoriesArg = Annotated[
    list[str],
    typer.Argument(help="Data categories: " + ", ".join(c.value for c in DataCategory) + "."),
]
RecipientOption = Annotated[
    str, typer.Option("--recipient", "-r", help="The recipient's name ([[recipients]]).")
]
ByOption = Annotated[str, typer.Option("--by", help="Who records it (the technician).")]
BasisOption = Annotated[
    str, typer.Option("--basis", help="On what basis: " + ", ".join(sorted(BASES)) + ".")
]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _record(
    action: str,
    recipient: str,
    categories: list[str],
    by: str,
    basis: str,
    config: ConfigOption,
    as_json: bool,
    to_ms: int | None = None,
) -> None:
    hub = load(config, as_json)
    known = [r.name for r in hub.all_recipients()]
    if recipient not in known:
        emit({"ok": False, "error": f"no recipient {recipient!r}", "recipients": known}, as_json)
        raise typer.Exit(EXIT_CONFIG)
    now_ms = _now_ms()
    try:
        record = new_record(
            action, recipient, categories, by=by, basis=basis, recorded_ms=now_ms, to_ms=to_ms
        )
        ledger = append_record(consent_path(hub.data_dir), record)
    except (ConsentError, ConsentFileError) as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    may = sorted(c.value for c in allowed_now(ledger.records, recipient, now_ms))
    emit(
        {"ok": True, "record": record.to_map(), "recipient": recipient, "may_receive": may}, as_json
    )


@app.command("grant")
def grant(
    categories: CategoriesArg,
    recipient: RecipientOption,
    by: ByOption,
    basis: BasisOption = "patient-consent",
    until_ms: Annotated[
        int | None, typer.Option("--until-ms", help="Epoch ms the consent ends (default: never).")
    ] = None,
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Record that RECIPIENT may receive CATEGORIES from now on."""
    _record("grant", recipient, categories, by, basis, config, as_json, to_ms=until_ms)


@app.command("withdraw")
def withdraw(
    categories: CategoriesArg,
    recipient: RecipientOption,
    by: ByOption,
    basis: BasisOption = "patient-consent",
    config: ConfigOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Record that RECIPIENT may no longer receive CATEGORIES (queued data is removed)."""
    _record("withdraw", recipient, categories, by, basis, config, as_json)


@app.command("show")
def show(config: ConfigOption = None, as_json: JsonFlag = False) -> None:
    """Show every recipient, what it may receive now, and the ledger."""
    hub = load(config, as_json)
    try:
        ledger = read_ledger(consent_path(hub.data_dir))
    except ConsentFileError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    now_ms = _now_ms()
    recipients = [
        {
            "name": r.name,
            "broker": f"{r.host}:{r.port}",
            "may_receive": sorted(c.value for c in allowed_now(ledger.records, r.name, now_ms)),
        }
        for r in hub.all_recipients()
    ]
    emit(
        {"ok": True, "recipients": recipients, "records": [r.to_map() for r in ledger.records]},
        as_json,
    )
