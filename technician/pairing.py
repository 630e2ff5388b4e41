"""Pairing a patient's device at the home: bond, read Device Information, set the clock,
take a test reading, and add it to the allowlist.

Pairing runs the same :class:`drivers.ble.BleCentral` the service uses, for one device with
``bond=True``, so what works here works in the field. The test reading is shown to the
technician and not stored (it is a check of the device, taken with the patient watching).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass, field

from common.errors import HintedError
from drivers.ble import BleBackend, BleCentral, CentralSettings, DeviceSpec, MeasurementEvent
from drivers.ble.central import DeviceStatus
from drivers.ble.pairing import PairingFailedError, PairingInput, bond
from gateway.config import DeviceConfig, HubConfig
from protocols.gatt import BatteryLevel, DeviceInformationString, to_observations


class PairingError(HintedError, RuntimeError):
    """Pairing did not complete; ``hint`` says what to try."""


@dataclass
class PairingResult:
    """What the technician sees after pairing."""

    address: str
    kind: str
    bonded: bool
    information: dict[str, str] = field(default_factory=dict)
    battery_percent: int | None = None
    clock_offset_s: float | None = None
    clock_set: bool = False
    #: Why a device clock found off was not set (the hub's own clock not trusted yet, or a
    #: read-only Current Time); ``None`` otherwise.
    clock_not_set: str | None = None
    test_reading: list[dict[str, str]] = field(default_factory=list)
    #: The quirk profile chosen for the device (protocols/gatt/quirks.py) and why.
    profile: str = "strict"
    profile_reason: str = ""

    def to_json(self) -> dict[str, object]:
        """The documented JSON shape of ``narhub ble pair --json``: every field, in order."""
        return asdict(self)


_DIS_NAMES = {
    0x2A29: "manufacturer",
    0x2A24: "model",
    0x2A25: "serial",
    0x2A26: "firmware",
    0x2A27: "hardware",
    0x2A28: "software",
}


async def pair_device(
    backend: BleBackend,
    address: str,
    kind: str,
    *,
    timeout_s: float = 60.0,
    test_reading_s: float = 30.0,
    settings: CentralSettings | None = None,
    pairing: PairingInput | None = None,
) -> PairingResult:
    """Bond with one device (an old bond removed first; ``pairing`` answers a passkey or a
    number to compare), then wait for Device Information and, if offered, a reading."""
    address = address.upper()
    try:
        await bond(backend, address, pairing or PairingInput(), scan_timeout_s=timeout_s)
    except PairingFailedError as exc:
        if exc.bluez_error is None:  # never reached the device: nothing BlueZ could refuse
            reason = f"no session with the {kind} within {timeout_s:.0f}s: {exc.reason}"
            raise PairingError(reason, exc.hint) from exc
        raise PairingError(f"{exc.reason} ({exc.bluez_error})", exc.hint) from exc
    events: asyncio.Queue[MeasurementEvent] = asyncio.Queue(1000)
    central = BleCentral(
        backend,
        events,
        [DeviceSpec(address, kind, bond=True)],
        settings=settings or CentralSettings(scanning_mode="active"),
    )
    status = central.status[address]
    reading: list[dict[str, str]] = []

    def note(event: MeasurementEvent) -> None:
        if isinstance(event.measurement, BatteryLevel | DeviceInformationString | None):
            return  # session facts, not a test reading
        observations = to_observations(event.measurement)
        if observations and not reading:
            reading.extend(
                {"mdc_code": str(o.mdc_code), "value": str(o.value or o.special), "unit": o.unit}
                for o in observations
            )

    failure: PairingError | None = None
    async with central:
        try:
            async with asyncio.timeout(timeout_s):
                # Device Information is read right after bonding; its values come as events.
                # A device without DIS (a Beurer BM85) says its battery or a reading first.
                while not (status.information or status.battery_percent is not None or reading):
                    note(await events.get())
        except TimeoutError:
            failure = PairingError(
                f"no session with the {kind} within {timeout_s:.0f}s"
                + (f" (last failure: {status.last_failure})" if status.last_failure else ""),
                "wake the device (take a measurement or press its button), keep it near the hub",
            )
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(test_reading_s):
                    while not reading:
                        note(await events.get())
                    # The clock is read, and set when off, as the session starts collecting.
                    while not clock_settled(status):  # noqa: ASYNC110 - session state, bounded
                        await asyncio.sleep(0.05)
    if failure is not None:
        raise failure
    if not status.bonded:
        raise PairingError("the device did not bond", "put it in pairing mode and retry")
    clock = status.clock
    return PairingResult(
        address=address,
        kind=kind,
        bonded=status.bonded,
        information={_DIS_NAMES.get(k, f"0x{k:04X}"): v for k, v in status.information.items()},
        battery_percent=status.battery_percent,
        clock_offset_s=None if clock is None else clock.offset_s,
        clock_set=status.clock_sets > 0,
        clock_not_set=status.clock_not_set,
        test_reading=reading,
        profile=status.profile.name,
        profile_reason=status.profile_reason,
    )


def clock_off(status: DeviceStatus) -> bool:
    """The device clock was found off by more than the central's limit."""
    clock = status.clock
    return (
        clock is not None
        and clock.offset_s is not None
        and clock.adjusted is False
        and (abs(clock.offset_s) > CentralSettings().clock_max_offset_s)
    )


def clock_settled(status: DeviceStatus) -> bool:
    """The clock was read and, if it was off, set (or left, saying why); or the device has
    no clock to read."""
    if status.has_clock is False:
        return True
    return status.clock is not None and (
        not clock_off(status) or status.clock_sets > 0 or status.clock_not_set is not None
    )


def with_device(
    config: HubConfig, address: str, kind: str, result: PairingResult | None = None
) -> HubConfig:
    """The configuration with the device allowlisted (replacing an entry for the address),
    with the quirk profile the pairing saw chosen."""
    address = address.upper()
    devices = [d for d in config.ble.devices if d.address.upper() != address]
    entry: dict[str, object] = {"address": address, "kind": kind, "bond": True}
    # Re-pairing (after a battery change) keeps the patient's user slot.
    old = [d.user_index for d in config.ble.devices if d.address.upper() == address]
    if old and old[0] is not None:
        entry["user_index"] = old[0]
    if result is not None:
        entry |= {"profile": result.profile, "profile_reason": result.profile_reason}
    devices.append(DeviceConfig.model_validate(entry))
    return config.model_copy(update={"ble": config.ble.model_copy(update={"devices": devices})})


def with_user_index(config: HubConfig, address: str, user_index: int | None) -> HubConfig:
    """The configuration with the patient's user slot on a shared device set (``None``:
    the device is not shared, every reading is the patient's)."""
    address = address.upper()
    if not any(d.address.upper() == address for d in config.ble.devices):
        raise PairingError(f"{address} is not paired", "pair it first: `narhub ble pair`")
    devices = [
        d.model_copy(update={"user_index": user_index}) if d.address.upper() == address else d
        for d in config.ble.devices
    ]
    DeviceConfig.model_validate(  # the range check of the field, with pydantic's message
        {"address": address, "kind": "blood_pressure", "user_index": user_index}
    )
    return config.model_copy(update={"ble": config.ble.model_copy(update={"devices": devices})})


def without_device(config: HubConfig, address: str) -> HubConfig:
    """The configuration without the device; raises if it was not paired."""
    address = address.upper()
    devices = [d for d in config.ble.devices if d.address.upper() != address]
    if len(devices) == len(config.ble.devices):
        raise PairingError(f"{address} is not paired", "see `narhub devices list`")
    return config.model_copy(update={"ble": config.ble.model_copy(update={"devices": devices})})
