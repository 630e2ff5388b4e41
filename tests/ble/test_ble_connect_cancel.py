"""A connection attempt that times out is cancelled in the adapter, and the next one works.

Core Spec Vol 4 Part E 7.8.12/7.8.13: one LE Create Connection is pending at a time; LE Create
Connection Cancel ends it (LE Connection Complete, status 0x02). The emulated adapter once kept
a timed-out attempt pending: after the hub gave up on a cuff that had gone to sleep, every
later connection was refused with Command Disallowed, and in the demo the glucose meter's last
record never left the meter (the intermittent "3 glucose missing").
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from drivers.ble import resolve_backend
from drivers.ble._bleak import BleakClient, BleakError
from drivers.ble.sim.blood_pressure import EmulatedBloodPressureCuff
from drivers.ble.sim.radio import HciServer, SimRadio
from drivers.ble.sim.thermometer import EmulatedThermometer


@contextlib.asynccontextmanager
async def _hub_radio(air: SimRadio, over_tcp: bool) -> AsyncIterator[SimRadio]:
    if not over_tcp:
        yield air
        return
    async with HciServer(air) as server:
        hub = SimRadio(transport=server.transport_name)
        try:
            yield hub
        finally:
            await hub.close()


@pytest.mark.parametrize("over_tcp", [False, True], ids=["in-process", "hci-over-tcp"])
async def test_a_timed_out_attempt_does_not_block_the_next_device(over_tcp: bool) -> None:
    air = SimRadio()
    thermometer = EmulatedThermometer(air, "C0:FF:EE:00:0C:01")
    cuff = EmulatedBloodPressureCuff(air, "C0:FF:EE:00:0C:02")  # asleep: not advertising
    await thermometer.start()
    await cuff.start()
    try:
        async with _hub_radio(air, over_tcp) as hub:
            client_cls = resolve_backend("sim", sim_radio=hub).client_cls
            asleep = BleakClient(cuff.address, timeout=0.5, backend=client_cls)
            started = time.monotonic()
            with pytest.raises(BleakError, match="not connectable"):
                await asleep.connect()
            assert time.monotonic() - started < 0.5 + 2.0, "the cancel was not confirmed"
            assert not cuff.connected
            awake = BleakClient(thermometer.address, timeout=5.0, backend=client_cls)
            await awake.connect()  # refused with Command Disallowed before the fix
            try:
                assert awake.is_connected
                assert thermometer.connected
            finally:
                await awake.disconnect()
    finally:
        await thermometer.stop()
        await cuff.stop()
