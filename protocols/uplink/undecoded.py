"""A raw record: a device value no decoder accepted, carried as it came (nothing is lost).

A hub that receives a value it cannot decode (an unknown device's dialect, a firmware that
breaks the GATT Specification Supplement layout) keeps its bytes and ships them to the region
in an ordinary reading, without a new field in the batch format (docs/protocols/uplink.md,
"Raw records"):

* flag :data:`FLAG_UNDECODED` and flag ``gatt-uuid:<128-bit characteristic UUID>``
  (Core Spec Vol 3 Part B 2.5.1 form, lower case) naming the characteristic it arrived on;
* MDC code :data:`RAW_RECORD_MDC` (0: not a nomenclature term, IEEE 11073-10101 reserves
  code 0 of every partition), unit ``""``, value ``None``;
* the bytes as lower-case hex behind ``hex:`` in ``special`` (the batch format carries any
  text there, as it does for Device Information strings);
* the time is the hub's reception time (the device's own stamp is inside the bytes).

The region never makes an Observation of it: it keeps the record (hub, device,
characteristic, time, bytes) so that a newer decoder can turn it into readings later.

Pure: names and small functions only.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.gatt.uuids import BASE_UUID_SUFFIX, uuid128
from protocols.uplink.wire_reading import WireReading

#: A reading that is a raw record (bytes no decoder accepted), not a measurement.
FLAG_UNDECODED = "undecoded"
#: Prefix of the flag naming the characteristic's 128-bit UUID.
UUID_FLAG = "gatt-uuid"
#: The MDC code a raw record carries (0: no term).
RAW_RECORD_MDC = 0
#: Prefix of the hex text in ``special``.
HEX_PREFIX = "hex:"


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A value as a device sent it, on the characteristic ``uuid`` (128-bit string)."""

    device: str
    uuid: str
    t_ms: int
    raw: bytes

    @property
    def characteristic(self) -> int | None:
        """The 16-bit SIG id when ``uuid`` is on the Bluetooth Base UUID, else ``None``."""
        if self.uuid.startswith("0000") and self.uuid.endswith(BASE_UUID_SUFFIX):
            return int(self.uuid[4:8], 16)
        return None


def raw_stream(device: str, characteristic: int) -> str:
    """The stream of a device's raw records on one characteristic."""
    return f"{device}/undecoded/{characteristic:04x}"


def raw_fields(characteristic: int, raw: bytes) -> tuple[str, frozenset[str]]:
    """``special`` and ``flags`` of the raw record of ``raw`` on a 16-bit ``characteristic``."""
    return HEX_PREFIX + raw.hex(), frozenset(
        {FLAG_UNDECODED, f"{UUID_FLAG}:{uuid128(characteristic)}"}
    )


def is_undecoded(reading: WireReading) -> bool:
    """True for a raw record (flag and code both say so)."""
    return FLAG_UNDECODED in reading.flags and reading.mdc_code == RAW_RECORD_MDC


def raw_record(reading: WireReading) -> RawRecord | None:
    """The raw record a reading carries; ``None`` when it is not one or is malformed (the
    flags are the hub's, but a region reads them defensively)."""
    if not is_undecoded(reading) or reading.special is None:
        return None
    text = reading.special
    if not text.startswith(HEX_PREFIX):
        return None
    try:
        raw = bytes.fromhex(text.removeprefix(HEX_PREFIX))
    except ValueError:
        return None
    uuids = [f.partition(":")[2] for f in reading.flags if f.startswith(UUID_FLAG + ":")]
    if len(uuids) != 1 or not uuids[0]:
        return None
    return RawRecord(reading.device, uuids[0].lower(), reading.t_ms, raw)
