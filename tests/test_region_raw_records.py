"""The region keeps raw records once, lists them, and marks them decoded (region/raw_records.py)."""

from __future__ import annotations

from pathlib import Path

from protocols.gatt import TEMPERATURE_MEASUREMENT, uuid128
from protocols.uplink.undecoded import RawRecord
from region.raw_records import SqliteRawRecords


def test_raw_records_are_kept_once_and_marked_decoded(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first = RawRecord("C0:00:00:00:00:01", uuid128(TEMPERATURE_MEASUREMENT), 1_000, b"\x06\x01")
    second = RawRecord("C0:00:00:00:00:01", uuid128(TEMPERATURE_MEASUREMENT), 2_000, b"")
    store = SqliteRawRecords(path)
    assert store.keep("hub-1", [first, second]) == 2
    assert store.keep("hub-1", [first]) == 0  # the same batch delivered again
    store.close()

    store = SqliteRawRecords(path)  # durable: another process (a later decoder) reads them
    assert [s.record for s in store.records()] == [first, second]
    store.decoded("hub-1", first, "narhub 0.2 protocols.gatt")
    assert [s.record for s in store.records()] == [second]
    everything = store.records(undecoded_only=False)
    assert [(s.record, s.decoded_by) for s in everything] == [
        (first, "narhub 0.2 protocols.gatt"),
        (second, None),
    ]
    store.close()
