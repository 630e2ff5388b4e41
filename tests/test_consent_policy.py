"""The consent ledger (protocols.consent; docs/consent.md): grants, withdrawals, bad records."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.categories import DataCategory
from protocols.consent import (
    ConsentError,
    ConsentRecord,
    allowed,
    allowed_now,
    recipients_of,
    record_from_map,
)

C = DataCategory
DAY_MS = 86_400_000


def _map(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "action": "grant",
        "recipient": "municipality",
        "categories": ["activity", "vital-signs"],
        "from_ms": 10 * DAY_MS,
        "to_ms": None,
        "recorded_by": "technician:anna",
        "basis": "patient-consent",
        "recorded_ms": 10 * DAY_MS,
    }
    doc.update(over)
    return doc


def test_record_round_trips() -> None:
    record = record_from_map(_map())
    assert record.categories == {C.ACTIVITY, C.VITAL_SIGNS}
    assert record_from_map(record.to_map()) == record


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"action": "allow"}, "action"),
        ({"recipient": "Kommun"}, "recipient"),
        ({"categories": []}, "categories"),
        ({"categories": ["climate"]}, "categories"),
        ({"from_ms": -1}, "from_ms"),
        ({"from_ms": True}, "from_ms"),
        ({"to_ms": 10 * DAY_MS}, "to_ms"),
        ({"basis": "because"}, "basis"),
        ({"recorded_by": ""}, "recorded_by"),
        ({"recorded_ms": "now"}, "recorded_ms"),
    ],
)
def test_bad_record_names_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ConsentError) as info:
        record_from_map(_map(**over))
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_without_consent_nothing_leaves() -> None:
    assert not allowed([], "region", C.VITAL_SIGNS, 0)


def test_grant_covers_its_interval_and_its_categories_only() -> None:
    ledger = [record_from_map(_map(to_ms=20 * DAY_MS))]
    assert allowed(ledger, "municipality", C.ACTIVITY, 10 * DAY_MS)
    assert not allowed(ledger, "municipality", C.ACTIVITY, 10 * DAY_MS - 1)
    assert not allowed(ledger, "municipality", C.ACTIVITY, 20 * DAY_MS)
    assert not allowed(ledger, "municipality", C.INDOOR_CLIMATE, 15 * DAY_MS)
    assert not allowed(ledger, "region", C.ACTIVITY, 15 * DAY_MS)


def test_withdrawal_ends_earlier_grants_for_that_recipient_only() -> None:
    ledger = [
        record_from_map(_map()),
        record_from_map(_map(recipient="region")),
        record_from_map(_map(action="withdraw", categories=["activity"], from_ms=12 * DAY_MS)),
    ]
    # Queued data taken before the withdrawal may not leave either.
    assert not allowed(ledger, "municipality", C.ACTIVITY, 11 * DAY_MS)
    assert allowed(ledger, "municipality", C.VITAL_SIGNS, 11 * DAY_MS)
    assert allowed(ledger, "region", C.ACTIVITY, 11 * DAY_MS)
    regrant = record_from_map(_map(categories=["activity"], from_ms=13 * DAY_MS))
    assert allowed([*ledger, regrant], "municipality", C.ACTIVITY, 13 * DAY_MS)
    assert not allowed([*ledger, regrant], "municipality", C.ACTIVITY, 11 * DAY_MS)
    assert allowed_now(ledger, "municipality", 11 * DAY_MS) == {C.VITAL_SIGNS}
    assert recipients_of(ledger, C.ACTIVITY, 11 * DAY_MS, ["region", "municipality"]) == {"region"}


_records = st.builds(
    lambda action, recipient, cats, start, length: ConsentRecord(
        action=action,
        recipient=recipient,
        categories=frozenset(cats),
        from_ms=start,
        to_ms=None if length is None else start + length,
        recorded_by="t",
        basis="patient-consent",
        recorded_ms=start,
    ),
    st.sampled_from(["grant", "withdraw"]),
    st.sampled_from(["region", "municipality"]),
    st.sets(st.sampled_from(list(DataCategory)), min_size=1),
    st.integers(0, 100),
    st.none() | st.integers(1, 100),
)


@given(st.lists(_records, max_size=8), st.integers(0, 300))
def test_a_final_withdrawal_of_everything_allows_nothing(
    ledger: list[ConsentRecord], at_ms: int
) -> None:
    everything = frozenset(DataCategory)
    ends = [
        ConsentRecord("withdraw", r, everything, 0, None, "t", "patient-consent", 0)
        for r in ("region", "municipality")
    ]
    assert allowed_now([*ledger, *ends], "region", at_ms) == frozenset()
    assert allowed_now([*ledger, *ends], "municipality", at_ms) == frozenset()


@given(st.lists(_records, max_size=8))
def test_maps_round_trip(ledger: list[ConsentRecord]) -> None:
    assert [record_from_map(r.to_map()) for r in ledger] == ledger
