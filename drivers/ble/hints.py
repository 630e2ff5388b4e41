"""The session hints of a device's quirk profile, applied by :class:`DeviceSession`.

:class:`protocols.gatt.quirks.DeviceProfile` names, per device family, how the conversation
deviates from the profile specifications (docs/protocols/phd.md 6.2). The session asks this
module, one question per hint:

* ``bond_before_discovery`` (:func:`bond_first`): pair before the first GATT read or CCCD
  write, instead of waiting for ATT "insufficient authentication" (Core Spec Vol 3 Part F
  3.4.1.1). bleak resolves the services while connecting (BlueZ does so on its own), so
  "before discovery" means before the session's own reads; a device that drops a link on an
  unencrypted read is served by it.
* ``settle_delay_ms`` (:func:`settle`): a pause after discovery and Device Information,
  before subscribing (Beurer BM85), and again before a Date Time clock write (A&D: after
  enabling indications, AndroidSampleCode ``BleReceivedService.java``).
* ``clock_rule`` (:func:`clock_characteristic`, :func:`clock_left_alone`): which
  characteristic holds the clock the hub reads and sets: Current Time 0x2A2B (CTS 1.1), or
  Date Time 0x2A08 inside the health service (A&D), or a vendor service narhub does not speak
  (Ascensia Contour: the clock is read from the Current Time when there is one, never set).
  Omron's rule (:func:`clock_after_notification`): the hub subscribes to Current Time
  notifications and writes the clock right after the first one (SpeziOmron).

The profile's ``base_time_is_utc`` was removed: a Glucose Measurement's time is Base Time plus
Time Offset (GLS 1.0 3.106 "user facing time"), local time whatever the Base Time's zone, so
nothing in a reading needs it.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from protocols.gatt import CURRENT_TIME, DATE_TIME, DateTime, encode
from protocols.gatt.quirks import ClockRule, DeviceProfile


def bond_first(profile: DeviceProfile, *, configured: bool, bonded: bool) -> bool:
    """Pair before any read: configured so (``DeviceConfig.bond``) or the profile says so."""
    return (configured or profile.bond_before_discovery) and not bonded


async def settle(profile: DeviceProfile) -> None:
    """The device's settle pause (none for most devices). A device requirement, not a way
    to wait for something: the device misbehaves when spoken to sooner."""
    if profile.settle_delay_ms > 0:
        await asyncio.sleep(profile.settle_delay_ms / 1000)


def clock_characteristic(profile: DeviceProfile, available: frozenset[int]) -> int | None:
    """The characteristic holding the device clock for this profile, if the device has it."""
    if profile.clock_rule is ClockRule.DATE_TIME_IN_SERVICE and DATE_TIME in available:
        return DATE_TIME
    if CURRENT_TIME in available:
        return CURRENT_TIME
    return None


def clock_after_notification(profile: DeviceProfile) -> bool:
    """The clock write waits for the device's first Current Time notification (Omron)."""
    return profile.clock_rule is ClockRule.CTS_AFTER_FIRST_NOTIFICATION


def clock_left_alone(profile: DeviceProfile) -> str | None:
    """Why the hub must not set this device's clock (``None``: it may)."""
    if profile.clock_rule is ClockRule.VENDOR_SERVICE:
        return "the device's clock is set through a vendor service narhub does not speak"
    return None


def date_time_value(hub_now: dt.datetime) -> bytes:
    """The Date Time 0x2A08 value that sets an A&D device's clock (GSS 3.70)."""
    return encode(DateTime.from_datetime(hub_now))
