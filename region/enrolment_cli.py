"""``narhub region enrol|unenrol|enrolments|unattributed``: which patient a hub is lent to.

Mounted on ``narhub region`` by :mod:`region.cli`. The store is the region's state database
(``--state``, the one ``narhub region ingest`` keeps: a SQLite file, or the ``postgresql://``
URL every receiver shares); the receivers read enrolments from it for every batch and release
held readings an enrolment covers within seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from common.cli import EXIT_FAILED, JsonFlag, emit, refused
from region.ca import RegionCa, RegionCaError, issued_hubs
from region.enrolment import (
    DEFAULT_PATIENT_SYSTEM,
    EnrolmentError,
    EnrolmentRequest,
    attribute,
    check_request,
    format_ms,
    normalise_device,
    parse_time,
    patient,
)
from region.enrolment_store import EnrolmentStore
from region.state import RegionStateError
from region.state_open import open_enrolments

State = Annotated[
    str,
    typer.Option(
        "--state",
        help="The region's state (as `ingest --state`): a SQLite file or a postgresql:// URL.",
    ),
]
HubOption = Annotated[str, typer.Option("--hub", help="The hub id (its certificate's CN).")]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="Only this device of the hub (AA:BB:CC:DD:EE:FF)."),
]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@contextmanager
def _store(spec: str, as_json: bool) -> Iterator[EnrolmentStore]:
    try:
        store = open_enrolments(spec)
    except RegionStateError as exc:
        emit({"ok": False, "error": str(exc)}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    try:
        yield store
    finally:
        store.close()


def enrol(
    state: State,
    ca_dir: Annotated[Path, typer.Option("--ca-dir", help="The region CA (knows the hubs).")],
    hub: HubOption,
    patient_value: Annotated[
        str, typer.Option("--patient", help="The patient's pseudonym (never a name or ID).")
    ],
    start: Annotated[str, typer.Option("--from", help="ISO 8601 with a zone, or 'now'.")],
    end: Annotated[
        str | None, typer.Option("--to", help="ISO 8601 with a zone (default: open).")
    ] = None,
    device: DeviceOption = None,
    patient_system: Annotated[
        str, typer.Option("--patient-system", help="The pseudonym's system URI.")
    ] = DEFAULT_PATIENT_SYSTEM,
    as_json: JsonFlag = False,
) -> None:
    """Lend a hub (or one of its devices) to a patient from --from (to --to)."""
    now = _now_ms()
    try:
        request = EnrolmentRequest(
            hub=hub,
            patient=patient(patient_system, patient_value),
            start_ms=parse_time("--from", start, now_ms=now),
            end_ms=None if end is None else parse_time("--to", end, now_ms=now),
            device=None if device is None else normalise_device(device),
        )
        check_request(request, issued_hubs(RegionCa(ca_dir)))
        with _store(state, as_json) as store:
            enrolment = store.enrol(request)
            now_enrolled = store.enrolments(hub)
            covered = sum(
                1
                for h in store.held(hub)
                if attribute(now_enrolled, h.reading.device, h.reading.t_ms) is not None
            )
    except (EnrolmentError, RegionCaError) as exc:
        raise refused(exc, as_json) from None
    except OSError as exc:
        emit({"ok": False, "error": f"cannot read the CA in {ca_dir}: {exc.strerror}"}, as_json)
        raise typer.Exit(EXIT_FAILED) from None
    # Held readings it covers are filed by the running receiver within seconds.
    emit({"ok": True, "enrolment": enrolment.to_json(), "releases_held": covered}, as_json)


def unenrol(
    state: State,
    hub: HubOption,
    device: DeviceOption = None,
    at: Annotated[
        str, typer.Option("--at", help="When the hub was returned (ISO 8601 or 'now').")
    ] = "now",
    as_json: JsonFlag = False,
) -> None:
    """End the enrolment of a hub (or device) at --at; at its start, withdraw it."""
    try:
        at_ms = parse_time("--at", at, now_ms=_now_ms())
        name = None if device is None else normalise_device(device)
        with _store(state, as_json) as store:
            ended = store.unenrol(hub, name, at_ms)
    except EnrolmentError as exc:
        raise refused(exc, as_json) from None
    withdrawn = at_ms == ended.start_ms
    emit(
        {
            "ok": True,
            "enrolment": ended.to_json(),
            "ended": None if withdrawn else format_ms(at_ms),
            "withdrawn": withdrawn,
        },
        as_json,
    )


def enrolments(
    state: State,
    hub: Annotated[str | None, typer.Option("--hub", help="Only this hub.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List the enrolments (hub, device, patient pseudonym, period, filed until)."""
    with _store(state, as_json) as store:
        found = store.enrolments(hub)
    emit({"ok": True, "enrolments": [e.to_json() for e in found]}, as_json)


def unattributed(
    state: State,
    hub: Annotated[str | None, typer.Option("--hub", help="Only this hub.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Readings no enrolment covers, held: per hub and device, how many and when (no values)."""
    with _store(state, as_json) as store:
        held = store.held(hub)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for h in held:
        t = h.reading.t_ms
        group = groups.setdefault(
            (h.hub, h.reading.device),
            {"hub": h.hub, "device": h.reading.device, "readings": 0, "first": t, "last": t},
        )
        group["readings"] += 1
        group["first"] = min(group["first"], t)
        group["last"] = max(group["last"], t)
    for group in groups.values():
        group["first"] = format_ms(group["first"])
        group["last"] = format_ms(group["last"])
    emit({"ok": True, "held": len(held), "groups": list(groups.values())}, as_json)


def register(app: typer.Typer) -> None:
    """Mount the enrolment commands on ``narhub region``."""
    app.command("enrol")(enrol)
    app.command("unenrol")(unenrol)
    app.command("enrolments")(enrolments)
    app.command("unattributed")(unattributed)
