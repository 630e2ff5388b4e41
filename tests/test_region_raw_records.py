"""The region keeps raw records once, lists them, and marks them decoded (region/raw_records.py;
in SQLite, and in the receivers' PostgreSQL state, region/enrolment_pg.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from protocols.gatt import TEMPERATURE_MEASUREMENT, uuid128
from protocols.uplink.undecoded import RawRecord
from region.raw_records import RawRecords, SqliteRawRecords


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RawRecords]:
    """Opens the store again each call (as another process would)."""
    if request.param == "sqlite":
        return lambda: SqliteRawRecords(tmp_path / "state.sqlite3")
    from region.enrolment_pg import PostgresRawRecords

    url = request.getfixturevalue("pg_url")
    return lambda: PostgresRawRecords(url)


def test_raw_records_are_kept_once_and_marked_decoded(opener: Callable[[], RawRecords]) -> None:
    first = RawRecord("C0:00:00:00:00:01", uuid128(TEMPERATURE_MEASUREMENT), 1_000, b"\x06\x01")
    second = RawRecord("C0:00:00:00:00:01", uuid128(TEMPERATURE_MEASUREMENT), 2_000, b"")
    store = opener()
    assert store.keep("hub-1", [first, second]) == 2
    assert store.keep("hub-1", [first]) == 0  # the same batch delivered again
    store.close()

    store = opener()  # durable: another process (a later decoder) reads them
    assert [s.record for s in store.records()] == [first, second]
    store.decoded("hub-1", first, "narhub 0.2 protocols.gatt")
    assert [s.record for s in store.records()] == [second]
    everything = store.records(undecoded_only=False)
    assert [(s.record, s.decoded_by) for s in everything] == [
        (first, "narhub 0.2 protocols.gatt"),
        (second, None),
    ]
    store.close()
