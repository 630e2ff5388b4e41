"""What the enrolment stores in SQL share (no I/O here): a held reading's JSON text, a row as
an :class:`region.enrolment.Enrolment` or :class:`region.enrolment_store.HeldReading`, and
:class:`SqlEnrolmentStore`, the rules of enrolling and ending an enrolment over a dialect's
statement runner (SQLite: :mod:`region.enrolment_sqlite`, PostgreSQL:
:mod:`region.enrolment_pg`).

Statements here are written once, with SQLite's ``?`` parameter marks; the PostgreSQL
runners turn them into psycopg's ``%s`` (no statement here holds a literal ``?`` or ``%``).
A new enrolment's id comes back from ``INSERT ... RETURNING id`` in both (SQLite
documentation, "The RETURNING Clause", since 3.35; PostgreSQL documentation, INSERT).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

from protocols.fhir.identity import PatientRef
from protocols.uplink.wire_reading import WireReading
from region.enrolment import (
    Enrolment,
    EnrolmentRequest,
    NotEnrolledError,
    OverlapError,
    check_end,
    conflict,
    ending,
)
from region.enrolment_store import HeldReading

#: A statement runner: the query (``?`` marks) and its parameters in, the rows (if any) out.
Run = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]

_COLUMNS = "id, hub, device, patient_system, patient_value, start_ms, end_ms, filed_until_ms"
_HELD = "key, hub, held_ms, reading FROM held_readings"
_HELD_ORDER = " ORDER BY hub, t_ms, device, mdc, key"


def reading_json(reading: WireReading) -> str:
    """A wire reading as JSON text (the value as its exact decimal text)."""
    return json.dumps(
        {
            "stream": reading.stream,
            "mdc": reading.mdc_code,
            "unit": reading.unit,
            "t_ms": reading.t_ms,
            "value": None if reading.value is None else str(reading.value),
            "special": reading.special,
            "flags": sorted(reading.flags),
            "device": reading.device,
        },
        separators=(",", ":"),
    )


def reading_from_json(text: str) -> WireReading:
    """The wire reading of :func:`reading_json`."""
    data = json.loads(text)
    value = data["value"]
    return WireReading(
        stream=data["stream"],
        mdc_code=int(data["mdc"]),
        unit=data["unit"],
        t_ms=int(data["t_ms"]),
        value=None if value is None else Decimal(value),
        special=data["special"],
        flags=frozenset(data["flags"]),
        device=data["device"],
    )


def enrolment_of_row(row: Sequence[object]) -> Enrolment:
    """A row of the enrolments' columns (``id, hub, device, patient_system, patient_value,
    start_ms, end_ms, filed_until_ms``) as an enrolment."""
    id_, hub, device, system, value, start, end, filed = row
    return Enrolment(
        id=int(str(id_)),
        hub=str(hub),
        patient=PatientRef(str(system), str(value)),
        start_ms=int(str(start)),
        end_ms=None if end is None else int(str(end)),
        device=None if device is None else str(device),
        filed_until_ms=None if filed is None else int(str(filed)),
    )


def hub_enrolments(run: Run, hub: str) -> list[Enrolment]:
    """The hub's enrolments, by start."""
    rows = run(
        f"SELECT {_COLUMNS} FROM enrolments WHERE hub = ? ORDER BY start_ms, id",  # noqa: S608
        (hub,),
    )
    return [enrolment_of_row(row) for row in rows]


def held_rows(readings: Iterable[HeldReading]) -> list[tuple[object, ...]]:
    """Held readings as rows of ``key, hub, device, mdc, t_ms, held_ms, reading``."""
    return [
        (
            h.key,
            h.hub,
            h.reading.device,
            h.reading.mdc_code,
            h.reading.t_ms,
            h.held_ms,
            reading_json(h.reading),
        )
        for h in readings
    ]


class SqlEnrolmentStore(ABC):
    """The :class:`region.enrolment_store.EnrolmentStore` rules in SQL: an enrolment is
    checked against its hub's others and written in one transaction that no other writer on
    the same hub interleaves with (:meth:`_writing`)."""

    @abstractmethod
    def _run(self, query: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` marks): its rows (none for a statement without)."""

    @abstractmethod
    def _writing(self, hub: str) -> AbstractContextManager[object]:
        """One write transaction, alone among the writers of ``hub``'s enrolments."""

    def enrol(self, request: EnrolmentRequest) -> Enrolment:
        """Insert it unless it overlaps one of its scope (one transaction)."""
        with self._writing(request.hub):
            existing = conflict(request, hub_enrolments(self._run, request.hub))
            if existing is not None:
                raise OverlapError(request, existing)
            ((new_id,),) = self._run(
                "INSERT INTO enrolments (hub, device, patient_system, patient_value, "
                "start_ms, end_ms) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    request.hub,
                    request.device,
                    request.patient.system,
                    request.patient.value,
                    request.start_ms,
                    request.end_ms,
                ),
            )
        return Enrolment(
            int(new_id),
            request.hub,
            request.patient,
            request.start_ms,
            request.end_ms,
            request.device,
        )

    def unenrol(self, hub: str, device: str | None, at_ms: int) -> Enrolment:
        """End (or withdraw) the enrolment covering ``at_ms`` (one transaction)."""
        with self._writing(hub):
            found = ending(hub_enrolments(self._run, hub), device, at_ms)
            if found is None:
                raise NotEnrolledError(hub, device, at_ms)
            check_end(found, at_ms)
            if at_ms == found.start_ms:
                self._run("DELETE FROM enrolments WHERE id = ?", (found.id,))
            else:
                self._run("UPDATE enrolments SET end_ms = ? WHERE id = ?", (at_ms, found.id))
        return found

    def enrolments(self, hub: str | None = None) -> list[Enrolment]:
        """The enrolments, by hub, device (hub-wide first) and start."""
        if hub is not None:
            return hub_enrolments(self._run, hub)
        rows = self._run(
            f"SELECT {_COLUMNS} FROM enrolments "  # noqa: S608 - fixed columns
            "ORDER BY hub, device NULLS FIRST, start_ms, id",
            (),
        )
        return [enrolment_of_row(row) for row in rows]

    def held(self, hub: str | None = None) -> list[HeldReading]:
        """The held readings, by hub and time."""
        if hub is None:
            rows = self._run(f"SELECT {_HELD}{_HELD_ORDER}", ())
        else:
            rows = self._run(f"SELECT {_HELD} WHERE hub = ?{_HELD_ORDER}", (hub,))
        return [
            HeldReading(str(key), str(h), reading_from_json(str(text)), int(ms))
            for key, h, ms, text in rows
        ]

    def held_hubs(self) -> list[str]:
        """The hubs with held readings."""
        rows = self._run("SELECT DISTINCT hub FROM held_readings ORDER BY hub", ())
        return [str(row[0]) for row in rows]
