"""Device-model quirks: known deviations of real devices, applied only when opted in.

Decoding is strict by default. A :class:`DeviceProfile`, chosen by :func:`select_profile` from
the Device Information strings (manufacturer 0x2A29, model 0x2A24, firmware 0x2A26) or the
advertised local name, lists byte-level corrections per characteristic (applied before the
strict decoder, so the result is still fully validated) and session hints for the BLE layer
(clock rule, settle delay, bonding, the RACP sequence filter). A reading decoded through a
correction that changed its bytes carries the quirk name in ``corrections``; its
observations get the flag ``quirk-corrected:<name>``. Sources: docs/protocols/phd.md
section 6.2 and the references cited per entry. Quirks are explicit opt-ins, never
heuristics applied to every device.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from protocols.gatt.numbers import BLOOD_PRESSURE_MEASUREMENT
from protocols.gatt.racp import RacpFilterType

# Blood Pressure Measurement flag bits (GSS 3.31), as in blood_pressure.py.
_BPM_TIME_STAMP = 0x02
_BPM_PULSE_RATE = 0x04
_BPM_USER_ID = 0x08
_BPM_STATUS = 0x10
_BPM_RFU_BIT6 = 0x40


@dataclass(frozen=True, slots=True)
class Quirk:
    """A byte-level correction of one characteristic's values for a device model.

    ``correct`` returns the conformant bytes (or the input unchanged when it does not apply);
    the strict decoder then validates the result as usual.
    """

    name: str
    characteristic: int
    description: str
    source: str
    correct: Callable[[bytes], bytes]


class ClockRule(enum.Enum):
    """How a device's clock is read and set (for the BLE session, docs/protocols/phd.md 6.2)."""

    CURRENT_TIME_SERVICE = "current-time-service"
    DATE_TIME_IN_SERVICE = "date-time-2a08-in-service"
    CTS_AFTER_FIRST_NOTIFICATION = "cts-after-first-notification"
    VENDOR_SERVICE = "vendor-service"


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """The quirks and session hints of one device family; :data:`STRICT` when unknown."""

    name: str
    quirks: tuple[Quirk, ...] = ()
    clock_rule: ClockRule = ClockRule.CURRENT_TIME_SERVICE
    settle_delay_ms: int = 0
    bond_before_discovery: bool = False
    #: The RACP filter type of a "report records from sequence number N" request: 0x01
    #: (GLS 1.0 table 3.6), or Omron's vendor 0x04 (:class:`RacpFilterType`).
    racp_sequence_filter: RacpFilterType = RacpFilterType.SEQUENCE_NUMBER
    notes: str = ""

    def quirk_for(self, characteristic: int) -> Quirk | None:
        """The correction for ``characteristic``, if this profile has one."""
        for quirk in self.quirks:
            if quirk.characteristic == characteristic:
                return quirk
        return None


#: The Measurement Status bit a Beurer cuff sets that GSS 3.31.2.6 reserves.
_BPM_STATUS_BEURER_BIT6 = 0x40


def _swap16(data: bytearray, offset: int) -> None:
    data[offset], data[offset + 1] = data[offset + 1], data[offset]


def correct_beurer_bpm(data: bytes) -> bytes:
    """Beurer BM48/BM59/BM85/ELITE900 Blood Pressure Measurement to the GSS 3.31 layout.

    These cuffs set RFU flag bit 6, send a User ID byte without flag bit 3, send Pulse Rate
    and Measurement Status big-endian, and may set the reserved Measurement Status bit 6
    (cleared here). The User ID byte is taken to be present exactly
    when the length says so (conformant length + 1 without bit 3), in its standard position.
    Values that do not fit this layout are returned unchanged for the strict decoder to judge.
    """
    if not data:
        return data
    fixed = bytearray(data)
    flags = fixed[0] & ~_BPM_RFU_BIT6
    base = 7 + (7 if flags & _BPM_TIME_STAMP else 0)
    size = base + (2 if flags & _BPM_PULSE_RATE else 0) + (2 if flags & _BPM_STATUS else 0)
    if flags & _BPM_USER_ID:
        size += 1
    elif len(data) == size + 1:
        flags |= _BPM_USER_ID
        size += 1
    if len(data) != size:
        return data
    fixed[0] = flags
    offset = base
    if flags & _BPM_PULSE_RATE:
        _swap16(fixed, offset)
        offset += 2
    if flags & _BPM_USER_ID:
        offset += 1
    if flags & _BPM_STATUS:
        _swap16(fixed, offset)
        # Beurer sets status bit 6, reserved in GSS 3.31.2.6 and undocumented by Beurer (a
        # recorded BM85 measurement with a pulse of 87 carries it): cleared, as the flag says.
        fixed[offset] &= ~_BPM_STATUS_BEURER_BIT6
    return bytes(fixed)


BEURER_BPM_BYTE_ORDER = Quirk(
    name="beurer-bpm-byte-order",
    characteristic=BLOOD_PRESSURE_MEASUREMENT,
    description=(
        "pulse rate and measurement status big-endian, unflagged User ID byte, RFU flag bit 6 set"
    ),
    source=(
        "derdilla/blood-pressure-monitor-fl PR #735 and #737 (Beurer BM85 capture), issue #566; "
        "docs/protocols/phd.md 6.2"
    ),
    correct=correct_beurer_bpm,
)

STRICT = DeviceProfile("strict")

BEURER_BPM = DeviceProfile(
    "beurer-bpm",
    quirks=(BEURER_BPM_BYTE_ORDER,),
    settle_delay_ms=100,
    notes="BM85 needs ~100 ms between discovery and subscribe; BM48/1 turns off on history read",
)

AND_MEDICAL = DeviceProfile(
    "and-medical",
    clock_rule=ClockRule.DATE_TIME_IN_SERVICE,
    settle_delay_ms=100,
    notes=(
        "sets its clock through Date Time 0x2A08 in the BP/WS service; replays its memory; "
        "failed readings arrive all-NaN (docs/protocols/phd.md 6.2)"
    ),
)

AND_MEDICAL_FAST = DeviceProfile(
    "and-medical",
    clock_rule=ClockRule.DATE_TIME_IN_SERVICE,
    settle_delay_ms=40,
    notes=AND_MEDICAL.notes,
)

OMRON = DeviceProfile(
    "omron",
    clock_rule=ClockRule.CTS_AFTER_FIRST_NOTIFICATION,
    bond_before_discovery=True,
    racp_sequence_filter=RacpFilterType.OMRON_SEQUENCE_NUMBER,
    notes=(
        "write CTS right after the first Current Time notification (SpeziOmron); pair before "
        "reading anything, as hass-omron does (its own BlueZ agent, then pair); RACP asks "
        "for records from a sequence number with Omron's filter type 0x04 (SpeziOmron)"
    ),
)

ASCENSIA_CONTOUR = DeviceProfile(
    "ascensia-contour",
    clock_rule=ClockRule.VENDOR_SERVICE,
    bond_before_discovery=True,
    notes=(
        "Base Time is UTC and Time Offset gives local time (base + offset is the user-facing "
        "time GLS 1.0 3.106 defines, so readings need no correction); bond immediately (blessed)"
    ),
)

# A&D firmware revisions that need only 40 ms before the clock write (AndroidSampleCode).
_AND_FAST_FIRMWARE = ("BLP008_D016", "BLP008_D017", "HTP008_134", "CWSP008_108", "CWSP008_110")
_AND_FAST_FIRMWARE_EXACT = ("WSP001_201",)
#: Omron's BLE cuffs advertise ``BLEsmart_`` and a hex id (upper-cased here).
_OMRON_NAME_PREFIX = "BLESMART_"
_BEURER_BPM_MODELS = ("BM48", "BM59", "BM85", "ELITE900")


def _norm(text: str | None) -> str:
    return "".join((text or "").split()).upper()


@dataclass(frozen=True, slots=True)
class ProfileChoice:
    """The profile chosen for a device and why (shown by ``narhub ble pair`` and
    ``narhub devices list``)."""

    profile: DeviceProfile
    reason: str


def select_profile(
    *,
    manufacturer: str | None = None,
    model: str | None = None,
    firmware: str | None = None,
    local_name: str | None = None,
) -> DeviceProfile:
    """The :class:`DeviceProfile` for a device, from its DIS strings or advertised name.

    Matching is case- and space-insensitive. Unknown devices get :data:`STRICT`.
    """
    return choose_profile(
        manufacturer=manufacturer, model=model, firmware=firmware, local_name=local_name
    ).profile


def choose_profile(
    *,
    manufacturer: str | None = None,
    model: str | None = None,
    firmware: str | None = None,
    local_name: str | None = None,
) -> ProfileChoice:
    """:func:`select_profile` with the reason: which string matched which rule.

    The advertised name (GAP Complete/Shortened Local Name, CSS Part A 1.2) counts when
    Device Information does not name the model (a Beurer BM85 has no DIS)."""
    maker, model_n, name_n = _norm(manufacturer), _norm(model), _norm(local_name)
    fw = _norm(firmware)
    if any(model_n.startswith(m) for m in _BEURER_BPM_MODELS) and (not maker or "BEURER" in maker):
        return ProfileChoice(BEURER_BPM, f"Device Information model {model!r}")
    if (
        not model_n
        and any(name_n.startswith(m) for m in _BEURER_BPM_MODELS)
        and (not maker or "BEURER" in maker)
    ):
        return ProfileChoice(BEURER_BPM, f"advertised name {local_name!r} (no DIS model)")
    if maker.startswith("A&D") or model_n.startswith(("UA-651", "UC-352", "UA-65", "UT-201")):
        why = f"Device Information manufacturer {manufacturer!r} model {model!r}"
        if fw.startswith(_AND_FAST_FIRMWARE) or fw in _AND_FAST_FIRMWARE_EXACT:
            return ProfileChoice(AND_MEDICAL_FAST, f"{why}, firmware {firmware!r}")
        return ProfileChoice(AND_MEDICAL, why)
    if "OMRON" in maker:
        return ProfileChoice(OMRON, f"Device Information manufacturer {manufacturer!r}")
    if not maker and name_n.startswith(_OMRON_NAME_PREFIX):
        return ProfileChoice(OMRON, f"advertised name {local_name!r} (Omron's BLEsmart_ names)")
    if "ASCENSIA" in maker or "CONTOUR" in model_n:
        return ProfileChoice(
            ASCENSIA_CONTOUR, f"Device Information manufacturer {manufacturer!r} model {model!r}"
        )
    if not model_n and name_n.startswith("CONTOUR"):
        return ProfileChoice(ASCENSIA_CONTOUR, f"advertised name {local_name!r} (no DIS model)")
    if not (maker or model_n or name_n):
        return ProfileChoice(STRICT, "no Device Information and no advertised name yet")
    return ProfileChoice(STRICT, "no known quirky model: strict decoding")
