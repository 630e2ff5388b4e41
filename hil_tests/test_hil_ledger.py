"""The ledger check itself must be able to fail: missing, doubled and foreign readings."""

from __future__ import annotations

from gateway.rig.ledger import FhirReading, LedgerEntry, reconcile


def _entry(value: str, device: str = "C0:FF:EE:00:00:01") -> LedgerEntry:
    return LedgerEntry("ble", device, "thermometer", 188424, "Cel", value, None, "0")


def _out(value: str, device: str = "c0:ff:ee:00:00:01") -> FhirReading:
    return FhirReading(device, 188424, "Cel", value)


def test_exact_match_with_the_same_value_twice() -> None:
    ledger = [_entry("37.2"), _entry("37.2"), _entry("36.9")]
    result = reconcile(ledger, [_out("37.20"), _out("37.2"), _out("36.9")])
    assert result.exact
    assert result.produced["thermometer"] == result.delivered["thermometer"] == 3


def test_a_missing_reading_is_reported() -> None:
    result = reconcile([_entry("37.2"), _entry("37.2")], [_out("37.2")])
    assert not result.exact
    assert len(result.missing) == 1
    assert "missing: 1 thermometer" in result.explain()


def test_a_doubled_reading_is_reported() -> None:
    result = reconcile([_entry("37.2")], [_out("37.2"), _out("37.2")])
    assert result.duplicated
    assert not result.missing


def test_a_reading_nobody_produced_is_reported() -> None:
    result = reconcile([_entry("37.2")], [_out("37.2"), _out("40.1")])
    assert result.unexpected


def test_other_devices_and_codes_are_ignored() -> None:
    battery = FhirReading("C0:FF:EE:00:00:01", 67996, "%", "87")
    hub = FhirReading("hub", 188424, "Cel", "1")
    assert reconcile([_entry("37.2")], [_out("37.2"), battery, hub]).exact


def test_settled_part_only_must_have_arrived() -> None:
    ledger = [_entry("37.2"), _entry("36.1")]
    result = reconcile(ledger, [_out("37.2")], settled=ledger[:1])
    assert result.exact
