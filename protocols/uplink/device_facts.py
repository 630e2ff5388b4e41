"""What a hub says about a device beside its measurements, in the readings it already ships.

Two facts travel with the readings, without a new field in the batch format
(docs/protocols/uplink.md, "Device facts"):

* **Device Information.** Each Device Information Service string a session read (DIS 1.1
  section 3: manufacturer, model, serial number, hardware, firmware and software revision)
  travels as one reading flagged :data:`FLAG_DEVICE_INFO`: its MDC code names the attribute
  (IEEE 11073-10101 partition 8, the codes the PHD IG's PhdDevice maps: MDC_ID_MODEL_*,
  MDC_ID_PROD_SPEC_*), its text is the reading's ``special`` (the batch format carries any
  text there), its value is ``None`` and its time is the read. The region turns them into
  a Device resource, never into an Observation.
* **The session's device clock.** A reading whose time comes from the device's own time stamp,
  in a session that read the device clock, carries two flags: the clock's offset from the
  hub's clock in whole seconds (``device-clock-offset-s:N``) and the hub's wall clock at that
  read (``device-clock-read-ms:T``, epoch ms). The pair names the session and holds what the
  PHD IG's coincident time stamp reports (the device's current time, N s from the hub's
  time T), so the region builds that Observation from any such reading, in any batch.

Pure: names and small functions only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from protocols.gatt import numbers as n
from protocols.uplink.wire_reading import WireReading

#: A reading that is a Device Information string, not a measurement.
FLAG_DEVICE_INFO = "device-info"
#: The device clock's offset from the hub's (device - hub), whole seconds.
CLOCK_OFFSET_FLAG = "device-clock-offset-s"
#: The hub's wall clock (epoch ms) when the session read the device clock.
CLOCK_READ_FLAG = "device-clock-read-ms"

#: IEEE 11073-10101 codes of the device attributes (partition 8, MDC_PART_INFRA).
MDC_ID_MODEL_NUMBER = 531969
MDC_ID_MODEL_MANUFACTURER = 531970
MDC_ID_PROD_SPEC_SERIAL = 531972
MDC_ID_PROD_SPEC_HW = 531974
MDC_ID_PROD_SPEC_SW = 531975
MDC_ID_PROD_SPEC_FW = 531976
#: MDC_ATTR_SYS_ID (IEEE 11073-10101 partition 1, object attributes: 1 * 65536 + 2436), the
#: 11073-20601 System-Id attribute the PHD IG's PhdDevice system id identifier maps.
MDC_ATTR_SYS_ID = 67972

#: DIS characteristic (16-bit UUID) -> the MDC code its reading carries.
DIS_MDC: dict[int, int] = {
    n.MANUFACTURER_NAME: MDC_ID_MODEL_MANUFACTURER,
    n.MODEL_NUMBER: MDC_ID_MODEL_NUMBER,
    n.SERIAL_NUMBER: MDC_ID_PROD_SPEC_SERIAL,
    n.HARDWARE_REVISION: MDC_ID_PROD_SPEC_HW,
    n.FIRMWARE_REVISION: MDC_ID_PROD_SPEC_FW,
    n.SOFTWARE_REVISION: MDC_ID_PROD_SPEC_SW,
    n.SYSTEM_ID: MDC_ATTR_SYS_ID,
}
#: The MDC codes a device-information reading may carry.
DEVICE_INFO_CODES = frozenset(DIS_MDC.values())


_EUI64 = re.compile(r"^[0-9A-F]{2}(-[0-9A-F]{2}){7}$")


def is_eui64(text: str) -> bool:
    """Whether ``text`` is an EUI-64 as the PHD IG writes a system id (capital hex, dashes)."""
    return _EUI64.match(text) is not None


def is_device_info(reading: WireReading) -> bool:
    """True for a Device Information reading (flag and code both say so)."""
    return FLAG_DEVICE_INFO in reading.flags and reading.mdc_code in DEVICE_INFO_CODES


def clock_flags(offset_s: float, read_ms: int) -> frozenset[str]:
    """The flags of a time-stamped reading from a session that read the device clock."""
    return frozenset({f"{CLOCK_OFFSET_FLAG}:{round(offset_s)}", f"{CLOCK_READ_FLAG}:{read_ms}"})


@dataclass(frozen=True, slots=True)
class ClockRead:
    """A session's read of the device clock, as a reading's flags carry it."""

    #: The hub's wall clock at the read (epoch ms).
    read_ms: int
    #: The device clock minus the hub clock, whole seconds.
    offset_s: int

    @property
    def device_ms(self) -> int:
        """The device's current time at the read, on the hub's timeline (epoch ms)."""
        return self.read_ms + self.offset_s * 1000


def clock_read(flags: frozenset[str]) -> ClockRead | None:
    """The session clock read named by a reading's flags; ``None`` when it has none (or a
    malformed one: the flags are the hub's, but a region reads them defensively)."""
    offset = read = None
    for flag in flags:
        name, _, value = flag.partition(":")
        if name == CLOCK_OFFSET_FLAG:
            offset = _integer(value)
        elif name == CLOCK_READ_FLAG:
            read = _integer(value)
    if offset is None or read is None:
        return None
    return ClockRead(read, offset)


def _integer(text: str) -> int | None:
    try:
        number = Decimal(text)
    except ArithmeticError:
        return None
    if not number.is_finite() or number != number.to_integral_value():
        return None
    return int(number)
