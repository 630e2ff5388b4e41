"""The end of a link with a bonded device, where a reading can fall between the hub's handler
and the CCCD write (docs/protocols/phd.md, "Known limit, bonded devices").

The seam: bumble's GATT client's ``write_value`` (``GattClient``), through which the central
(the sim backend's, or the virtual BlueZ's) writes a CCCD off. A test starts its step when the
hub's ``stop_notify`` has dropped the handler and the write ``00 00`` is about to go out: the
window the docs describe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ble_rig import Rig

from drivers.ble.sim._bumble import GattClient
from drivers.ble.sim.body_composition import EmulatedBodyCompositionScale
from drivers.ble.sim.radio import SimRadio
from protocols import gatt as g
from rig.virtual import after_the_link

CCCD_OFF = b"\x00\x00"
ADDRESS = "C0:00:00:00:0E:01"


def _at_the_cccd_off_write(
    monkeypatch: pytest.MonkeyPatch, step: Callable[[], Awaitable[None]]
) -> list[asyncio.Task[None]]:
    """Start ``step`` (once, as a task) when the hub first writes a CCCD off; the returned
    list gets the step's task."""
    original = GattClient.write_value
    started: list[asyncio.Task[None]] = []

    async def write_value(
        self: Any, attribute: Any, value: bytes, with_response: bool = False
    ) -> None:
        if value == CCCD_OFF and not started:
            started.append(asyncio.ensure_future(step()))
        await original(self, attribute, value, with_response)

    monkeypatch.setattr(GattClient, "write_value", write_value)
    return started


@pytest.mark.parametrize("backend", ["sim", "bluez"])
async def test_a_person_who_waits_for_the_link_to_end_loses_no_reading(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    scale = EmulatedBodyCompositionScale(rig.radio, ADDRESS, seed=7)
    first = await scale.measure()
    after_link: list[bool] = []

    async def person() -> None:
        await after_the_link(scale)
        after_link.append(scale.connected)
        await scale.measure()

    steps = _at_the_cccd_off_write(monkeypatch, person)
    async with rig.running(("body_composition", scale)) as (_central, got):
        await got.wait_for(
            lambda: len(got.of(g.BODY_COMPOSITION_MEASUREMENT)) == 2 * len(first), 20
        )
    assert steps, "the session never turned a CCCD off (the device has a bond)"
    await steps[0]
    # The person measured only once the link had ended, and the reading came on the next.
    assert after_link == [False]
    assert scale.stored == 0


async def test_after_the_link_returns_at_once_without_a_link() -> None:
    scale = EmulatedBodyCompositionScale(SimRadio(), ADDRESS, seed=8)
    assert not scale.connected
    async with asyncio.timeout(1):
        await after_the_link(scale)
