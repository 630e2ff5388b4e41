"""Virtual-rig scenarios (TOML): which devices and boards, their seeds, schedules and faults.

A scenario describes a home for ``narhub rig``::

    name = "compressed-day"
    seed = 7
    time_scale = 1440.0             # device clocks and schedules run 1440x: a day per minute

    [[devices]]
    kind = "thermometer"            # or blood_pressure, scale, pulse_oximeter, glucose, cgm,
                                    # ghs, enhanced_blood_pressure, body_composition
    address = "C0:FF:EE:00:00:01"
    clock_offset_s = 31536000       # its clock a year ahead (until the hub sets it)
    every_s = 14400                 # scenario seconds between measurements
    count = 6
    [[devices.faults]]
    at_s = 30000                    # scenario time
    fault = "out_of_range"          # out_of_range | drop_after_records | malformed |
                                    # sensor_change (a CGM: a new sensor session)
    duration_s = 7200

    [[boards]]
    board_id = "sim-0001"
    interval_ms = 100               # real milliseconds between temperature samples
    [[boards.faults]]
    at_s = 20000
    fault = "unplug"
    duration_s = 3600

Errors name the TOML key, as the hub configuration's do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from gateway.config import ConfigError, StrictModel, read_toml, validated

DeviceKind = Literal[
    "thermometer",
    "blood_pressure",
    "scale",
    "pulse_oximeter",
    "glucose",
    "cgm",
    "ghs",
    "enhanced_blood_pressure",
    "body_composition",
]


class ScenarioError(ConfigError):
    """The scenario file is unreadable or invalid; ``problems`` lists key: message."""


class FaultSpec(StrictModel):
    """A fault at scenario time ``at_s``; undone after ``duration_s`` when it has one.

    ``sensor_change`` (a CGM): the sensor is replaced, a new session starts at ``at_s``
    (Time Offsets from 0, Session Start Time unknown until the hub writes it).
    """

    at_s: float = Field(ge=0)
    fault: Literal[
        "out_of_range",
        "drop_after_records",
        "drop_after_notifications",
        "malformed",
        "unplug",
        "sensor_change",
        "battery_replaced",
    ]
    duration_s: float = Field(default=0, ge=0)
    #: ``drop_after_records`` / ``drop_after_notifications``: PDUs sent before the link drops
    #: (a supervision timeout, as when carried out of range); ``malformed``: payloads cut.
    count: int = Field(default=1, ge=1, le=10_000)


class DeviceSpec(StrictModel):
    """One emulated BLE device and its measurement schedule."""

    kind: DeviceKind
    address: str = Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    seed: int | None = None
    #: Scenario seconds between measurements (the first at ``first_s``).
    every_s: float = Field(default=3600, gt=0)
    first_s: float = Field(default=0, ge=0)
    count: int = Field(default=4, ge=0, le=100_000)
    #: Records the device already holds when the rig starts (glucose, pulse oximeter).
    stored_records: int = Field(default=0, ge=0, le=10_000)
    #: How far the device's clock is off when the rig starts (seconds; a year: 31536000).
    #: The device keeps it until a central sets the clock (Current Time, CTS 1.1 3.1).
    clock_offset_s: float = Field(default=0.0, ge=-3_153_600_000, le=3_153_600_000)
    #: The battery level the device reports (Battery Level 0x2A19) until a
    #: ``battery_replaced`` fault sets it to 100.
    battery_percent: int = Field(default=87, ge=0, le=100)
    faults: list[FaultSpec] = Field(default_factory=list)


class BoardSpec(StrictModel):
    """One MicroPython sensor board (firmware on the unix port behind a pty)."""

    board_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,32}$")
    interval_ms: int = Field(default=200, ge=10, le=3_600_000)
    seed: int | None = None
    #: A bad cable: the probability that a chunk on the serial line gets a byte corrupted.
    corrupt_p: float = Field(default=0.0, ge=0, le=0.5)
    faults: list[FaultSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_cable(self) -> BoardSpec:
        if self.corrupt_p and any(f.fault == "unplug" for f in self.faults):
            raise ValueError("a board with corrupt_p cannot also be unplugged (one cable)")
        return self


class Scenario(StrictModel):
    """A whole home."""

    name: str = "home"
    seed: int = 0
    #: Scenario seconds per real second (device clocks and schedules run this much faster).
    time_scale: float = Field(default=1.0, gt=0, le=1_000_000)
    #: The TCP port of the emulated adapter's HCI (0: any free port, written to rig.json).
    hci_port: int = Field(default=0, ge=0, le=65535)
    devices: list[DeviceSpec] = Field(default_factory=list)
    boards: list[BoardSpec] = Field(default_factory=list)

    @property
    def span_s(self) -> float:
        """Scenario time until the last scheduled measurement or fault ends."""
        ends = [0.0]
        for d in self.devices:
            if d.count:
                ends.append(d.first_s + d.every_s * (d.count - 1))
            ends.extend(f.at_s + f.duration_s for f in d.faults)
        for b in self.boards:
            ends.extend(f.at_s + f.duration_s for f in b.faults)
        return max(ends)


def parse_scenario(data: dict[str, object], *, path: Path) -> Scenario:
    """Validate parsed TOML; errors name the dotted key (``devices[0].kind``)."""
    return validated(Scenario, data, path=path, error=ScenarioError)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file."""
    return parse_scenario(read_toml(path, error=ScenarioError), path=path)
