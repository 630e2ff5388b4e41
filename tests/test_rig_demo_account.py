"""The demo's account of board readings: one still in a board's flash unacknowledged is in
flight, not lost (the firmware's store: ``readings.log`` and ``readings.log.ack``)."""

from __future__ import annotations

import struct
from binascii import crc32
from pathlib import Path

from rig.ledger import LedgerEntry
from rig.showcase import POWER_CUT_WINDOW_MS, _in_power_cut, _on_board
from rig.sim_boards import unacknowledged

_RECORD = struct.Struct("<IIIQQiBB2xI")  # firmware/sensorfw/store.py's 40-byte record


def _record(lsn: int, seq: int, value: int) -> bytes:
    body = struct.pack("<IIIQQiBB2x", lsn, 7, seq, 1000 + lsn, 0, value, 4, 0)
    return body + struct.pack("<I", crc32(body))


def _log(tmp_path: Path, tail: int | None) -> Path:
    log = tmp_path / "readings.log"
    log.write_bytes(b"".join(_record(lsn, lsn, lsn % 2) for lsn in range(4)))
    if tail is not None:
        raw = struct.pack("<I", tail)
        (tmp_path / "readings.log.ack").write_bytes(raw + struct.pack("<I", crc32(raw)))
    return log


def test_unacknowledged_readings_are_those_from_the_acknowledged_tail(tmp_path: Path) -> None:
    assert _RECORD.size == 40
    assert [r.seq for r in unacknowledged(_log(tmp_path, 2))] == [2, 3]


def test_without_an_ack_file_every_reading_is_unacknowledged(tmp_path: Path) -> None:
    assert [r.seq for r in unacknowledged(_log(tmp_path, None))] == [0, 1, 2, 3]


def _entry(seq: int, value: str) -> LedgerEntry:
    return LedgerEntry("board", "b1", "door-open", 192516, "1", value, None, f"7/{seq}")


def test_a_missing_reading_is_in_flight_only_if_an_equal_one_is_unread() -> None:
    # The reconciliation names which equal entry is missing arbitrarily: seq 0 stands for
    # the unread seq 3 (both "1"); a missing "0" with no unread "0" is lost.
    missing = [_entry(0, "1"), _entry(1, "0")]
    unread = [_entry(3, "1")]
    assert _on_board(missing, unread) == [_entry(0, "1")]
    assert _on_board([_entry(0, "1"), _entry(2, "1")], unread) == [_entry(0, "1")]


def _ble(seq: int, mdc: int, value: str) -> LedgerEntry:
    return LedgerEntry(
        "ble", "C0:FF:EE:00:0D:02", "blood_pressure", mdc, "mm[Hg]", value, None, str(seq)
    )


def test_a_measurement_given_up_just_before_the_plug_was_pulled_is_named_not_lost() -> None:
    """One confirmation within the window before the cut explains one missing measurement
    (all its entries); one long before it, or a second missing measurement, explains nothing."""
    cut = 1_000_000
    missing = [_ble(1, 150021, "120"), _ble(1, 150022, "80"), _ble(2, 150021, "130")]
    confirmed = {"C0:FF:EE:00:0D:02": [cut - 200]}
    assert _in_power_cut(missing, confirmed, [cut]) == missing[:2]
    long_before = {"C0:FF:EE:00:0D:02": [cut - POWER_CUT_WINDOW_MS - 1]}
    assert _in_power_cut(missing, long_before, [cut]) == []
    assert _in_power_cut(missing, confirmed, []) == []
