"""De-duplication: the hub's one place for the identity of readings a source may send again.

Pure. Every source gives its readings a key here (:func:`record_key` for BLE records,
:func:`board_key` for sensor-board readings), the pipeline drops a key it cannot trust
(:func:`trusted_key`), and the outbox stores a reading with a given key at most once, in the
same transaction as the reading (:mod:`gateway.outbox.keys`). Below the hub, the BLE
driver only avoids asking for what it knows is committed (the RACP record cursor) and drops a
value re-indicated within one session; it decides nothing about storage.

Devices re-send old records: a glucose meter answers "report all records", a blood
pressure monitor re-indicates its memory on every connection, a RACP download restarts after
a hub crash from the last *committed* cursor. Keys are kept ``store.dedup_retention_days``.

The key is built from the device, the record's identity on the device (its sequence number,
else its device time stamp), the MDC code and the value as sent. The value is part of the key
so that two *different* measurements never share one, even when a device's clock was reset
and stamps everything 2000-01-01: only a byte-identical resend is dropped. A reading with
neither a sequence number nor a device time (live notifications: oximeter, heart-rate strap)
gets no key: a notification is never sent twice.

A sensor board numbers its readings per boot (docs/protocols/sensor-link.md, section 5
"Delivery"): ``board/boot/seq`` is unique, and a board resending after a lost ACK (or a hub
restart) is dropped.
"""

from __future__ import annotations

import datetime as dt

from gateway.reading import Reading
from gateway.validate import FLAG_DEVICE_TIME

SEQUENCE_KEY_PREFIX = "ble-seq/"
TIME_KEY_PREFIX = "ble-time/"


def record_key(
    device: str,
    mdc_code: int,
    value: object,
    *,
    sequence_number: int | None,
    device_time: dt.datetime | None,
) -> str | None:
    """The de-duplication key of one device record's observation, or None."""
    if sequence_number is not None:
        return f"{SEQUENCE_KEY_PREFIX}{device}/{sequence_number}/{mdc_code}/{value}"
    if device_time is not None:
        return f"{TIME_KEY_PREFIX}{device}/{device_time.isoformat()}/{mdc_code}/{value}"
    return None


def board_key(board_id: str, boot_id: int, seq: int) -> str:
    """The de-duplication key of one sensor-board reading."""
    return f"{board_id}/{boot_id}/{seq}"


def is_time_key(key: str | None) -> bool:
    """Whether a key rests on a device time stamp (unsafe when the device clock was reset)."""
    return key is not None and key.startswith(TIME_KEY_PREFIX)


def trusted_key(reading: Reading) -> Reading:
    """The reading without a key that rests on a device time stamp validation found suspect
    (flag ``device-time-suspect``, :mod:`gateway.validate`).

    A reset device clock stamps everything alike: a key from it could merge two different
    measurements. Keep both rather than risk dropping one."""
    if FLAG_DEVICE_TIME in reading.flags and is_time_key(reading.source_key):
        return reading._replace(source_key=None)
    return reading


def reading_key(reading: Reading, *, sequence_number: int | None) -> str | None:
    """The key of a BLE reading (its value, or its special value, identifies it too)."""
    value = reading.value if reading.value is not None else reading.special
    return record_key(
        reading.device,
        reading.mdc_code,
        value,
        sequence_number=sequence_number,
        device_time=reading.device_time,
    )
