"""``narhub region consent grant|withdraw|show``: the recipient's own record of the consents
it holds per hub (region/consents.py; docs/consent.md). The receiver (``narhub region ingest
--recipient NAME``, same ``--state``) checks every batch against it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from common.cli import EXIT_FAILED, JsonFlag, emit
from common.consent import new_record
from protocols.categories import DataCategory
from protocols.consent import BASES, ConsentError, ConsentRecord, allowed_now
from region.consents import SqliteConsentRegistry

consent_app = typer.Typer(help="The consents this recipient holds, per hub (docs/consent.md).")

State = Annotated[Path, typer.Option(help="The receiver's state database (as for ingest).")]
Recipient = Annotated[str, typer.Option(help="This recipient's name (region, municipality).")]
Hub = Annotated[str, typer.Option("--hub", help="The hub id the consent is for.")]
Categories = Annotated[
    list[str], typer.Argument(help=", ".join(c.value for c in DataCategory) + ".")
]
By = Annotated[str, typer.Option("--by", help="Who records it.")]
Basis = Annotated[str, typer.Option(help=", ".join(sorted(BASES)) + ".")]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def consent_record(
    action: str,
    recipient: str,
    categories: list[str],
    by: str,
    basis: str,
    from_ms: int | None,
    as_json: bool,
) -> ConsentRecord:
    """A command's consent record, recorded now (from ``from_ms``, default now) and checked
    (:func:`protocols.consent.record_from_map`); one the rules refuse ends the command (the
    error and its field emitted, exit code failed)."""
    try:
        return new_record(
            action,
            recipient,
            categories,
            by=by,
            basis=basis,
            recorded_ms=_now_ms(),
            from_ms=from_ms,
        )
    except ConsentError as exc:
        emit({"ok": False, "error": str(exc), "field": exc.field}, as_json)
        raise typer.Exit(EXIT_FAILED) from None


def _add(
    action: str,
    state: Path,
    recipient: str,
    hub: str,
    categories: list[str],
    by: str,
    basis: str,
    from_ms: int | None,
    as_json: bool,
) -> None:
    record = consent_record(action, recipient, categories, by, basis, from_ms, as_json)
    now_ms = record.recorded_ms
    registry = SqliteConsentRegistry(state, recipient)
    try:
        registry.add(hub, record)
        may = sorted(c.value for c in allowed_now(registry.ledger(hub), recipient, now_ms))
    finally:
        registry.close()
    emit({"ok": True, "hub": hub, "record": record.to_map(), "may_receive": may}, as_json)


@consent_app.command("grant")
def grant(
    categories: Categories,
    state: State,
    recipient: Recipient,
    hub: Hub,
    by: By,
    basis: Basis = "patient-consent",
    from_ms: Annotated[int | None, typer.Option(help="Epoch ms (default: now).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record that this recipient holds consent for CATEGORIES from HUB."""
    _add("grant", state, recipient, hub, categories, by, basis, from_ms, as_json)


@consent_app.command("withdraw")
def withdraw(
    categories: Categories,
    state: State,
    recipient: Recipient,
    hub: Hub,
    by: By,
    basis: Basis = "patient-consent",
    as_json: JsonFlag = False,
) -> None:
    """Record that the consent for CATEGORIES from HUB is withdrawn."""
    _add("withdraw", state, recipient, hub, categories, by, basis, None, as_json)


@consent_app.command("show")
def show(state: State, recipient: Recipient, as_json: JsonFlag = False) -> None:
    """Every hub's ledger, what each may send now, and the batches refused."""
    registry = SqliteConsentRegistry(state, recipient)
    try:
        now_ms = _now_ms()
        hubs = {
            hub: {
                "may_receive": sorted(
                    c.value for c in allowed_now(registry.ledger(hub), recipient, now_ms)
                ),
                "records": [r.to_map() for r in registry.ledger(hub)],
            }
            for hub in registry.hubs()
        }
        emit(
            {"ok": True, "recipient": recipient, "hubs": hubs, "refused": registry.refusals()},
            as_json,
        )
    finally:
        registry.close()
