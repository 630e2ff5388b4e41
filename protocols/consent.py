"""Consent records and the pure policy over them: which categories may leave for a recipient.

A consent record (docs/consent.md) says that a recipient (a care organisation) may receive a
set of data categories taken from a time, until a time or until withdrawn; who recorded it and
on what basis. A withdrawal names the recipient and the categories and ends every grant
recorded before it: nothing of those categories leaves for that recipient any more, whenever
it was taken (the hub removes what is queued, with a tombstone); a later grant starts anew.
The records form a ledger kept in the order they were recorded; :func:`allowed` replays it.
Pure: times are epoch milliseconds passed in, no clock, no I/O.

The same map travels as the body of a signed ``consent`` command (protocols/commands.py) and
in the hub's consent file: keys ``action``, ``recipient``, ``categories``, ``from_ms``,
``to_ms`` (absent or null: until withdrawn), ``recorded_by``, ``basis``, ``recorded_ms``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from protocols.categories import DataCategory, UnknownCategoryError
from protocols.errors import ProtocolError

#: The lawful bases narhub records (docs/consent.md): the patient's consent, consent given by
#: their legal representative, or a care decision the law allows without consent.
BASES = frozenset({"patient-consent", "representative-consent", "care-decision"})
_RECIPIENT = re.compile(r"^[a-z][a-z0-9-]{1,31}$")
_MAX_TEXT = 200
Action = Literal["grant", "withdraw"]


class ConsentError(ProtocolError, ValueError):
    """A consent record that is not valid: ``field`` names the key, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"consent record: {field}: {reason}")


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One grant or withdrawal of categories for one recipient."""

    action: Action
    recipient: str
    categories: frozenset[DataCategory]
    from_ms: int
    to_ms: int | None
    recorded_by: str
    basis: str
    recorded_ms: int

    def to_map(self) -> dict[str, Any]:
        """The record as a plain map (JSON and CBOR), categories sorted."""
        return {
            "action": self.action,
            "recipient": self.recipient,
            "categories": sorted(c.value for c in self.categories),
            "from_ms": self.from_ms,
            "to_ms": self.to_ms,
            "recorded_by": self.recorded_by,
            "basis": self.basis,
            "recorded_ms": self.recorded_ms,
        }


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise ConsentError(key, f"a text of 1 to {_MAX_TEXT} characters is needed")
    return value


def _optional_ms(doc: Mapping[str, Any], key: str) -> int | None:
    return None if doc.get(key) is None else _ms(doc, key)


def _ms(doc: Mapping[str, Any], key: str) -> int:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ConsentError(key, "epoch milliseconds (a non-negative integer) are needed")
    return value


def _categories(doc: Mapping[str, Any]) -> frozenset[DataCategory]:
    names = doc.get("categories")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConsentError("categories", "a non-empty list of category names is needed")
    try:
        return frozenset(DataCategory(n) for n in names)
    except ValueError:
        bad = next(n for n in names if n not in {c.value for c in DataCategory})
        raise ConsentError("categories", str(UnknownCategoryError(bad))) from None


def record_from_map(doc: Mapping[str, Any]) -> ConsentRecord:
    """A validated record from its map; :class:`ConsentError` names the first bad key."""
    action = doc.get("action")
    if action not in ("grant", "withdraw"):
        raise ConsentError("action", "'grant' or 'withdraw' is needed")
    recipient = _text(doc, "recipient")
    if not _RECIPIENT.match(recipient):
        raise ConsentError("recipient", "a recipient name (a-z, 0-9, -) is needed")
    basis = _text(doc, "basis")
    if basis not in BASES:
        raise ConsentError("basis", f"one of {', '.join(sorted(BASES))} is needed")
    from_ms = _ms(doc, "from_ms")
    to_ms = _optional_ms(doc, "to_ms")
    if to_ms is not None and to_ms <= from_ms:
        raise ConsentError("to_ms", "must be after from_ms")
    recorded_ms = _ms(doc, "recorded_ms")
    return ConsentRecord(
        action=action,
        recipient=recipient,
        categories=_categories(doc),
        from_ms=from_ms,
        to_ms=to_ms,
        recorded_by=_text(doc, "recorded_by"),
        basis=basis,
        recorded_ms=recorded_ms,
    )


def _intervals(
    ledger: Iterable[ConsentRecord], recipient: str, category: DataCategory
) -> list[tuple[int, int | None]]:
    """The [from, to) intervals in which ``recipient`` may receive ``category``."""
    spans: list[tuple[int, int | None]] = []
    for record in ledger:
        if record.recipient != recipient or category not in record.categories:
            continue
        if record.action == "grant":
            spans.append((record.from_ms, record.to_ms))
            continue
        spans = []  # a withdrawal ends every grant recorded before it, queued data included
    return spans


def allowed(
    ledger: Iterable[ConsentRecord], recipient: str, category: DataCategory, at_ms: int
) -> bool:
    """May a reading of ``category`` taken at ``at_ms`` leave for ``recipient``?"""
    return any(
        a <= at_ms and (b is None or at_ms < b) for a, b in _intervals(ledger, recipient, category)
    )


def allowed_now(
    ledger: Iterable[ConsentRecord], recipient: str, now_ms: int
) -> frozenset[DataCategory]:
    """The categories ``recipient`` may receive at ``now_ms`` (for doctor and status)."""
    records = list(ledger)
    return frozenset(c for c in DataCategory if allowed(records, recipient, c, now_ms))


def recipients_of(
    ledger: Iterable[ConsentRecord], category: DataCategory, at_ms: int, recipients: Iterable[str]
) -> frozenset[str]:
    """Of ``recipients``, those that may receive ``category`` at ``at_ms``."""
    records = list(ledger)
    return frozenset(r for r in recipients if allowed(records, r, category, at_ms))
