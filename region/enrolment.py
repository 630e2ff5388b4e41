"""Enrolment: which patient a hub (or one of its devices) is lent to, and for when.

The region lends a hub to a patient for a period, then to the next. A patient is a
pseudonymous identifier (a system URI and a value); no name and no personal identity number
is ever stored (a value that is a valid Swedish personnummer or samordningsnummer is refused).

A period is half-open, ``[start, end)``, in epoch ms (``end`` ``None``: still lent). An
enrolment is hub-wide or for one device of the hub. Every reading is attributed by its
effective time (:func:`attribute`): a device enrolment covering it wins over a hub-wide one
(two patients sharing one hub are told apart by device); with none, the reading is
unattributed and held (:mod:`region.filing`), never guessed.

Refused, with a message naming the conflict (:class:`EnrolmentError` and its subclasses):
two periods of one hub (hub-wide), or of one device of a hub, that overlap; a hub the region
CA never issued a certificate to; an end before (or at) the start; a time that is not one.

Pure: the store (:mod:`region.enrolment_store`) keeps enrolments, this module judges them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from common.errors import HintedError
from protocols.fhir.identity import PatientRef, is_mac

#: The pseudonym system when none is given (a region sets its own with ``--patient-system``).
DEFAULT_PATIENT_SYSTEM = "urn:narhub:patient-pseudonym"

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_PSEUDONYM = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
_DEVICE = re.compile(r"^[A-Za-z0-9:._-]{1,64}$")
#: YYMMDD-NNNC / YYYYMMDDNNNC, with - or + (Skatteverket SKV 704, personnummer).
_PERSONNUMMER = re.compile(r"^(\d{2})?(\d{6})[-+]?(\d{4})$")


class EnrolmentError(HintedError, ValueError):
    """An enrolment operation was refused: ``reason`` says what, ``hint`` what to do."""


class BadTimeError(EnrolmentError):
    """A time that cannot be read (``text``)."""

    def __init__(self, option: str, text: str) -> None:
        self.option = option
        self.text = text
        super().__init__(
            f"{option} {text!r} is not a time",
            "give ISO 8601 with a zone, e.g. 2026-03-01T08:00+01:00 or 2026-03-01T07:00Z, or 'now'",
        )


class EndBeforeStartError(EnrolmentError):
    """A period whose end is not after its start."""

    def __init__(self, start_ms: int, end_ms: int) -> None:
        self.start_ms = start_ms
        self.end_ms = end_ms
        super().__init__(
            f"the period ends ({format_ms(end_ms)}) before or when it starts "
            f"({format_ms(start_ms)})",
            "give --to after --from",
        )


class UnknownHubError(EnrolmentError):
    """A hub the region CA never issued a certificate to."""

    def __init__(self, hub: str) -> None:
        self.hub = hub
        super().__init__(
            f"hub {hub!r} is unknown: the region CA never issued it a certificate",
            "check the hub id (`narhub region ca sign` names it), or the --ca-dir",
        )


class BadPatientError(EnrolmentError):
    """A patient identifier that is not a pseudonym (or its system not a URI)."""

    def __init__(self, what: str, why: str) -> None:
        self.what = what
        super().__init__(f"{what}: {why}", "give the care team's pseudonym, never a name or ID")


class BadDeviceError(EnrolmentError):
    """A device that is not an address or device id."""

    def __init__(self, device: str) -> None:
        self.device = device
        super().__init__(
            f"device {device!r} is not a Bluetooth address or device id",
            "give the address as AA:BB:CC:DD:EE:FF (as `narhub ble list` shows it)",
        )


class NotEnrolledError(EnrolmentError):
    """No enrolment of the hub (device) covers the time given."""

    def __init__(self, hub: str, device: str | None, at_ms: int) -> None:
        self.hub = hub
        self.device = device
        self.at_ms = at_ms
        what = f"hub {hub!r}" if device is None else f"device {device} of hub {hub!r}"
        super().__init__(
            f"{what} has no enrolment at {format_ms(at_ms)}",
            "see `narhub region enrolments --hub HUB`",
        )


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    """A period to lend a hub (or one of its devices) to a patient."""

    hub: str
    patient: PatientRef
    start_ms: int
    end_ms: int | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A stored enrolment; ``filed_until_ms``: the latest effective time filed to it."""

    id: int
    hub: str
    patient: PatientRef
    start_ms: int
    end_ms: int | None
    device: str | None = None
    filed_until_ms: int | None = None

    def covers(self, t_ms: int) -> bool:
        """Whether a reading taken at ``t_ms`` falls in the period."""
        return self.start_ms <= t_ms and (self.end_ms is None or t_ms < self.end_ms)

    def to_json(self) -> dict[str, object]:
        """The enrolment as the CLI shows it."""
        return {
            "id": self.id,
            "hub": self.hub,
            "device": self.device,
            "patient": {"system": self.patient.system, "value": self.patient.value},
            "from": format_ms(self.start_ms),
            "to": None if self.end_ms is None else format_ms(self.end_ms),
            "filed_until": None if self.filed_until_ms is None else format_ms(self.filed_until_ms),
        }


class OverlapError(EnrolmentError):
    """The period overlaps an enrolment of the same hub (hub-wide) or device."""

    def __init__(self, request: EnrolmentRequest, existing: Enrolment) -> None:
        self.request = request
        self.existing = existing
        scope = (
            f"hub {request.hub!r}"
            if request.device is None
            else f"device {request.device} of hub {request.hub!r}"
        )
        until = "open" if existing.end_ms is None else format_ms(existing.end_ms)
        super().__init__(
            f"{scope} is already enrolled from {format_ms(existing.start_ms)} to {until} "
            f"(enrolment {existing.id}, patient {existing.patient.value})",
            "end that enrolment first (`narhub region unenrol`) or choose a period after it",
        )


class FiledAfterEndError(EnrolmentError):
    """Ending an enrolment before readings already filed to its patient."""

    def __init__(self, enrolment: Enrolment, end_ms: int) -> None:
        self.enrolment = enrolment
        self.end_ms = end_ms
        filed = enrolment.filed_until_ms or 0
        super().__init__(
            f"readings up to {format_ms(filed)} are already filed to patient "
            f"{enrolment.patient.value} (enrolment {enrolment.id}); it cannot end at "
            f"{format_ms(end_ms)}",
            "end it after the last filed reading; correct filed readings in the FHIR server",
        )


def format_ms(t_ms: int) -> str:
    """Epoch ms as ISO 8601 UTC (seconds, or milliseconds when there are any)."""
    moment = dt.datetime.fromtimestamp(t_ms / 1000, tz=dt.UTC)
    spec = "seconds" if t_ms % 1000 == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_time(option: str, text: str, *, now_ms: int) -> int:
    """An ISO 8601 date-time with a zone (or ``now``) as epoch ms; :class:`BadTimeError`."""
    if text.strip().lower() == "now":
        return now_ms
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTimeError(option, text) from None
    if moment.tzinfo is None:
        raise BadTimeError(option, text)
    return round(moment.timestamp() * 1000)


def normalise_device(device: str) -> str:
    """A device as the hub names it: a Bluetooth address in capitals; :class:`BadDeviceError`."""
    text = device.strip()
    if not _DEVICE.match(text):
        raise BadDeviceError(device)
    return text.upper() if is_mac(text.upper()) else text


def _luhn(digits: str) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def looks_like_personnummer(value: str) -> bool:
    """A Swedish personnummer or samordningsnummer (date, birth number, Luhn check digit)."""
    match = _PERSONNUMMER.match(value.strip())
    if match is None:
        return False
    date, tail = match.group(2), match.group(3)
    month, day = int(date[2:4]), int(date[4:6])
    if day > 60:  # samordningsnummer: day + 60
        day -= 60
    return 1 <= month <= 12 and 1 <= day <= 31 and _luhn(date + tail)


def patient(system: str, value: str) -> PatientRef:
    """A pseudonymous patient identifier, checked; :class:`BadPatientError`."""
    if not _URI.match(system):
        raise BadPatientError(f"patient system {system!r}", "not an absolute URI")
    if looks_like_personnummer(value):
        raise BadPatientError("the patient value", "it is a personal identity number")
    if not _PSEUDONYM.match(value):
        raise BadPatientError(
            f"patient value {value!r}", "a pseudonym is 1-64 of A-Z a-z 0-9 . _ ~ -"
        )
    return PatientRef(system, value)


def check_request(request: EnrolmentRequest, known_hubs: Collection[str]) -> None:
    """Refuse an unknown hub or an empty period (the store refuses overlaps)."""
    if request.hub not in known_hubs:
        raise UnknownHubError(request.hub)
    if request.end_ms is not None and request.end_ms <= request.start_ms:
        raise EndBeforeStartError(request.start_ms, request.end_ms)


def _overlap(a_start: int, a_end: int | None, b_start: int, b_end: int | None) -> bool:
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def conflict(request: EnrolmentRequest, existing: Iterable[Enrolment]) -> Enrolment | None:
    """The stored enrolment the request overlaps in the same scope (hub-wide, or the same
    device of the same hub); a hub-wide and a device enrolment may overlap."""
    for e in existing:
        same_scope = e.hub == request.hub and e.device == request.device
        if same_scope and _overlap(request.start_ms, request.end_ms, e.start_ms, e.end_ms):
            return e
    return None


def attribute(enrolments: Iterable[Enrolment], device: str, t_ms: int) -> Enrolment | None:
    """The enrolment a reading of ``device`` taken at ``t_ms`` is filed to (enrolments of
    its hub): the device's own if one covers it, else the hub-wide one, else none."""
    hub_wide = None
    for e in enrolments:
        if not e.covers(t_ms):
            continue
        if e.device == device:
            return e
        if e.device is None:
            hub_wide = e
    return hub_wide


def ending(enrolments: Iterable[Enrolment], device: str | None, at_ms: int) -> Enrolment | None:
    """The enrolment of ``device`` (``None``: hub-wide) that ``unenrol --at`` ends: the one
    covering ``at_ms``."""
    for e in enrolments:
        if e.device == device and e.covers(at_ms):
            return e
    return None


def check_end(enrolment: Enrolment, end_ms: int) -> None:
    """Refuse an end before the start, or at or before a reading already filed to it. An
    end at the start withdraws an enrolment nothing was filed to (one entered by mistake)."""
    if end_ms < enrolment.start_ms:
        raise EndBeforeStartError(enrolment.start_ms, end_ms)
    if enrolment.filed_until_ms is not None and enrolment.filed_until_ms >= end_ms:
        raise FiledAfterEndError(enrolment, end_ms)
