"""Validation: special values, physiological plausibility per code, clock sanity.

Pure functions. A reading that fails a check is *flagged*, never dropped or altered (a
clinical reading travels as measured; docs/clinical-boundary.md, EU MDR): the care team and
the region's systems decide what a flag means. The table is documented in docs/pipeline.md;
the ranges and their sources are in docs/plausibility.md (BP 20-300 mmHg, SpO2
50-100 %, temperature 25-45 Cel, weight 1-400 kg, glucose 10-600 mg/dL), converted exactly to
the other units a device may send, plus pulse and RR ranges and the sensor boards' ranges.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from gateway.reading import Reading
from protocols.uplink.device_facts import FLAG_DEVICE_INFO
from protocols.uplink.undecoded import FLAG_UNDECODED

#: A value outside the plausible range of its code and unit.
FLAG_IMPLAUSIBLE = "implausible"
#: A special value narhub does not know (known: nan, nres, +inf, -inf, reserved).
FLAG_UNKNOWN_SPECIAL = "special-unknown"
#: Neither a value nor a special value (a source bug); the reading still travels.
FLAG_NO_VALUE = "value-missing"
#: The device's time stamp is impossible (before 2000) or ahead of the hub by more than allowed.
FLAG_DEVICE_TIME = "device-time-suspect"
#: The hub's own wall clock is before it could possibly be (no RTC, NTP not yet answered).
FLAG_HUB_CLOCK = "hub-clock-unsynced"
#: Received before the hub's wall clock was trusted; its time was back-filled from the
#: monotonic clock of the same boot (exact to the ms; docs/pipeline.md, "The hub's clock").
FLAG_HUB_TIME_BACKFILLED = "hub-time-backfilled"
#: Received in an earlier boot whose wall clock was never trusted: its time is an estimate,
#: an upper bound anchored at the next boot's start (docs/pipeline.md, "The hub's clock").
FLAG_HUB_TIME_ESTIMATED = "hub-time-estimated"

KNOWN_SPECIALS = frozenset({"nan", "nres", "+inf", "-inf", "reserved"})

#: 2025-01-01T00:00:00Z: a hub clock before this has not been set since the last power cut.
MIN_PLAUSIBLE_WALL_MS = 1_735_689_600_000
#: How far a device's time stamp may be ahead of the hub's local clock (zone and DST mistakes).
DEVICE_AHEAD_LIMIT_S = 7200.0
_MIN_DEVICE_TIME = dt.datetime(2000, 1, 1)  # noqa: DTZ001 - device clocks are naive
#: The same moment as epoch ms (UTC), for a time already on the hub's clock.
_MIN_DEVICE_TIME_MS = 946_684_800_000

_D = Decimal

# (low, high) inclusive, per (MDC code, UCUM unit).
_BP = {"mm[Hg]": (_D(20), _D(300)), "kPa": (_D("2.6"), _D(40))}
_PULSE = {"/min": (_D(20), _D(300))}
_TEMP = {"Cel": (_D(25), _D(45)), "[degF]": (_D(77), _D(113))}
_GLUCOSE = {"mg/dL": (_D(10), _D(600)), "mmol/L": (_D("0.5"), _D("33.4"))}

#: NARHUB private codes of the sensor boards (``gateway.board_source.NARHUB_PRIVATE_BASE + kind``).
_BOARD = 2 * 65536 + 0xF000

PLAUSIBLE: dict[int, dict[str, tuple[Decimal, Decimal]]] = {
    150021: _BP,  # MDC_PRESS_BLD_NONINV_SYS
    150022: _BP,  # MDC_PRESS_BLD_NONINV_DIA
    150023: _BP,  # MDC_PRESS_BLD_NONINV_MEAN
    149546: _PULSE,  # MDC_PULS_RATE_NON_INV
    149530: _PULSE,  # MDC_PULS_OXIM_PULS_RATE
    147842: _PULSE,  # MDC_ECG_HEART_RATE
    147240: {"ms": (_D(200), _D(3000))},  # MDC_ECG_TIME_PD_RR_GL
    150456: {"%": (_D(50), _D(100))},  # MDC_PULS_OXIM_SAT_O2
    150364: _TEMP,  # MDC_TEMP_BODY
    150392: _TEMP,  # MDC_TEMP_TYMP
    188420: _TEMP,  # MDC_TEMP_RECT
    188424: _TEMP,  # MDC_TEMP_ORAL
    188428: _TEMP,  # MDC_TEMP_EAR
    188432: _TEMP,  # MDC_TEMP_FINGER
    188452: _TEMP,  # MDC_TEMP_AXILLA
    188456: _TEMP,  # MDC_TEMP_GIT
    188448: _TEMP,  # MDC_TEMP_TOE
    188736: {"kg": (_D(1), _D(400)), "[lb_av]": (_D("2.2"), _D(882))},  # MDC_MASS_BODY_ACTUAL
    160184: _GLUCOSE,  # MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD
    160188: _GLUCOSE,  # MDC_CONC_GLU_CAPILLARY_PLASMA
    160192: _GLUCOSE,  # MDC_CONC_GLU_VENOUS_WHOLEBLOOD
    160196: _GLUCOSE,  # MDC_CONC_GLU_VENOUS_PLASMA
    160200: _GLUCOSE,  # MDC_CONC_GLU_ARTERIAL_WHOLEBLOOD
    160204: _GLUCOSE,  # MDC_CONC_GLU_ARTERIAL_PLASMA
    160212: _GLUCOSE,  # MDC_CONC_GLU_ISF
    160364: _GLUCOSE,  # MDC_CONC_GLU_UNDETERMINED_WHOLEBLOOD
    160368: _GLUCOSE,  # MDC_CONC_GLU_UNDETERMINED_PLASMA
    _BOARD + 1: {"Cel": (_D(-40), _D(85))},  # air temperature (sensor board)
    _BOARD + 2: {"%": (_D(0), _D(100))},  # relative humidity (sensor board)
}


#: Readings whose ``special`` is text, not an 11073 special value.
_TEXT_FLAGS = frozenset({FLAG_DEVICE_INFO, FLAG_UNDECODED})


def value_flags(reading: Reading) -> frozenset[str]:
    """Flags for the value itself: specials, missing values, plausibility (pure)."""
    value = reading.value
    if value is None:
        special = reading.special
        if special is None:
            return frozenset({FLAG_NO_VALUE})
        if special in KNOWN_SPECIALS or not _TEXT_FLAGS.isdisjoint(reading.flags):
            return frozenset()  # a device-information or raw record's text is not a value
        return frozenset({FLAG_UNKNOWN_SPECIAL})
    ranges = PLAUSIBLE.get(reading.mdc_code)
    if ranges is None:
        return frozenset()
    bounds = ranges.get(reading.unit)
    if bounds is None or (bounds[0] <= value <= bounds[1]):
        return frozenset()
    return frozenset({FLAG_IMPLAUSIBLE})


def clock_flags(reading: Reading, *, max_device_ahead_s: float) -> frozenset[str]:
    """Flags for the clocks: the hub's wall clock, the device's time stamp (pure).

    A device time is compared with the hub's wall clock at reception as a naive local time
    (devices have no zone): before 2000 (a reset clock) or ahead of the hub by more than
    ``max_device_ahead_s`` is suspect. Stored records may be old; old is not suspect.
    """
    flags: set[str] = set()
    if reading.hub_wall_ms < MIN_PLAUSIBLE_WALL_MS:
        flags.add(FLAG_HUB_CLOCK)
    device_time = reading.device_time
    if device_time is not None:
        naive = device_time
        if device_time.tzinfo is not None:
            # An aware stamp (GHS, UTC): compared as an instant, in the hub's local zone.
            try:
                naive = device_time.astimezone().replace(tzinfo=None)
            except (OverflowError, ValueError, OSError):
                naive = dt.datetime.min  # noqa: DTZ901 - compared naive: before 2000
        if naive < _MIN_DEVICE_TIME:
            flags.add(FLAG_DEVICE_TIME)
        elif FLAG_HUB_CLOCK not in flags:
            hub_local = dt.datetime.fromtimestamp(reading.hub_wall_ms / 1000)  # noqa: DTZ006
            if (naive - hub_local).total_seconds() > max_device_ahead_s:
                flags.add(FLAG_DEVICE_TIME)
    return frozenset(flags)


def corrected_time_plausible(reading: Reading, *, max_device_ahead_s: float) -> bool:
    """Whether a suspect stamp still gives the measurement's time: the session observed the
    device clock's offset (``clock_offset_ms``) and the corrected time (``source_wall_ms``) is
    neither before 2000 nor ahead of the reception by more than allowed (a year-off clock the
    hub read through CTS; ``gateway.pipeline.device_wall_ms``)."""
    corrected = reading.source_wall_ms
    if corrected is None or reading.clock_offset_ms is None:
        return False
    return _MIN_DEVICE_TIME_MS <= corrected <= reading.hub_wall_ms + max_device_ahead_s * 1000


def validate(reading: Reading, *, max_device_ahead_s: float = DEVICE_AHEAD_LIMIT_S) -> Reading:
    """The reading with any validation flags added (the same object when there are none)."""
    value = reading.value
    if (
        value is not None
        and reading.device_time is None
        and reading.hub_wall_ms >= MIN_PLAUSIBLE_WALL_MS
    ):
        # The common case, checked inline (the pipeline's hot path): a value, no clock to
        # check, and no flag unless the value is implausible (then the full path below).
        ranges = PLAUSIBLE.get(reading.mdc_code)
        if ranges is None:
            return reading
        bounds = ranges.get(reading.unit)
        if bounds is None or bounds[0] <= value <= bounds[1]:
            return reading
    flags = value_flags(reading)
    if reading.hub_wall_ms < MIN_PLAUSIBLE_WALL_MS or reading.device_time is not None:
        flags |= clock_flags(reading, max_device_ahead_s=max_device_ahead_s)
    if not flags or flags <= reading.flags:
        return reading
    return reading._replace(flags=reading.flags | flags)
