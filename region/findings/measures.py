"""What a care plan can expect, by name, and the MDC codes (IEEE 11073-10101) that satisfy it.

A plan names a measurement (``blood-pressure``), never a code: the names are the care team's,
the codes the devices'. A reading satisfies an expectation when its MDC code is one of the
measure's codes (a compound blood pressure arrives as its components, flagged
``component-of:150020``, so each component code counts). ``sensor-board`` is no measurement:
it is a device expected to report all the time (a board's readings carry narhub's private
codes, :data:`BOARD_CODE_BASE` and up).
"""

from __future__ import annotations

from dataclasses import dataclass

#: narhub's private MDC partition for sensor-board kinds (partition 2, 0xF000 and up:
#: gateway/board_source.py ``NARHUB_PRIVATE_BASE``; the region must not import the hub).
BOARD_CODE_BASE = 2 * 65536 + 0xF000
BOARD_CODE_END = 2 * 65536 + 0xFFFF


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a vital sign's plot: an MDC code and its label (:mod:`region.worklist.i18n`)."""

    mdc_code: int
    label: str


@dataclass(frozen=True, slots=True)
class Measure:
    """A measurement a plan can expect: the codes that satisfy it and the lines it plots."""

    name: str
    codes: frozenset[int]
    lines: tuple[Line, ...]
    unit: str


#: MDC codes from IEEE 11073-10101 (as protocols/gatt/observation.py names them).
MEASURES: dict[str, Measure] = {
    m.name: m
    for m in (
        Measure(
            "blood-pressure",
            frozenset({150020, 150021, 150022, 150023}),
            (Line(150021, "systolic"), Line(150022, "diastolic")),
            "mm[Hg]",
        ),
        Measure("body-weight", frozenset({188736}), (Line(188736, "weight"),), "kg"),
        Measure("spo2", frozenset({150456}), (Line(150456, "spo2"),), "%"),
        Measure(
            "pulse-rate",
            frozenset({149546, 149530, 147842}),
            (Line(149546, "pulse"), Line(149530, "pulse-oximeter")),
            "/min",
        ),
        Measure(
            "body-temperature",
            frozenset({150364, 188452, 188428, 188432, 188456, 188424, 188420, 188448, 150392}),
            (Line(150364, "temperature"), Line(188424, "temperature")),
            "Cel",
        ),
        Measure(
            "glucose",
            frozenset({160184, 160188, 160192, 160196, 160200, 160204, 160212, 160364, 160368}),
            (Line(160184, "glucose"), Line(160188, "glucose-plasma")),
            "mmol/L",
        ),
    )
}
#: A device expected to report all the time (its gap is measured, not a window).
SENSOR_BOARD = "sensor-board"
#: Every name a plan may use.
NAMES = (*MEASURES, SENSOR_BOARD)

_BY_CODE = {code: m for m in MEASURES.values() for code in m.codes}


def measure_of(mdc_code: int) -> Measure | None:
    """The measure a reading's code belongs to (``None``: none a plan names)."""
    return _BY_CODE.get(mdc_code)


def is_board_code(mdc_code: int) -> bool:
    """Whether a code is a sensor board's (narhub's private partition)."""
    return BOARD_CODE_BASE <= mdc_code <= BOARD_CODE_END
