"""A device that sees the confirmation of a RACP answer late still takes the next request.

The hub writes its next RACP request as soon as it has the previous procedure's answer (for
a pulse oximeter: "delete all" right after "report all" and the commit). Its confirmation of
that answer and the new request can reach the device together (one TCP read on the virtual
rig under load, or a busy device): the device's procedure task has then not yet seen the
confirmation. The emulated device refused that request with ATT 0xFE *Procedure Already In
Progress*; the hub classed the session as a protocol failure and backed off for seconds, and
under load again and again, so a spot check taken meanwhile stayed on the device past the
HIL test's delivery wait. Here the late confirmation is made deterministic.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ble_rig import running

from drivers.ble._bleak import BleakClient, BleakGATTProtocolError
from drivers.ble.sim._bumble import Characteristic
from drivers.ble.sim.backend import bind_backend
from drivers.ble.sim.pulse_oximeter import EmulatedPulseOximeter
from drivers.ble.sim.racp import PROCEDURE_ALREADY_IN_PROGRESS
from drivers.ble.sim.radio import SimRadio
from protocols.gatt import (
    PLX_CONTINUOUS_MEASUREMENT,
    PLX_SPOT_CHECK_MEASUREMENT,
    RECORD_ACCESS_CONTROL_POINT,
    RacpRequest,
    encode,
)
from protocols.gatt.uuids import uuid128


class _Requests(list[RacpRequest]):
    """The RACP server's request log, signalling each arrival."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def append(self, request: RacpRequest) -> None:
        super().append(request)
        self.arrived.set()


class _BusyOximeter(EmulatedPulseOximeter):
    """An oximeter whose first RACP procedure sees its answer confirmed only after the
    client's next request has arrived."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests = _Requests()
        self.racp.requests = self.requests
        self.held = 0

    async def send(
        self, characteristic: Characteristic[bytes], payload: bytes, *, indicate: bool
    ) -> bool:
        answer = characteristic is self.racp.characteristic and self.held == 0
        if answer:
            self.held += 1
            self.requests.arrived.clear()
        sent = await super().send(characteristic, payload, indicate=indicate)
        if answer and sent:
            await self.requests.arrived.wait()  # the next request came before this returned
        return sent


async def test_next_racp_request_with_the_confirmation_of_the_last_answer_is_taken() -> None:
    radio = SimRadio()
    plx = _BusyOximeter(radio, "C0:00:00:00:03:81", seed=83, interval_s=0.02, stored_records=3)
    async with running(radio, [("pulse_oximeter", plx)]) as (central, got):
        status = central.status[plx.address]
        # The stream keeps values coming while connected, so the predicate is re-checked.
        await got.wait_for(lambda: (not plx.racp.records) or bool(status.failures))
        await got.wait_for(lambda: len(got.of(PLX_CONTINUOUS_MEASUREMENT)) >= 1)
    assert plx.held == 1  # the first answer's confirmation was seen late
    requests = [r.op_code.name for r in plx.requests]
    assert requests[:2] == ["REPORT_STORED_RECORDS", "DELETE_STORED_RECORDS"]
    assert status.failures == {}, f"the device refused a request: {status.failures}"
    assert not plx.racp.records  # deleted after the commit, in the first session
    assert status.records_pending_delete == 0
    assert len([e for e in got.of(PLX_SPOT_CHECK_MEASUREMENT) if e.stored]) == 3


async def test_a_request_while_records_are_still_reported_is_refused() -> None:
    radio = SimRadio()
    plx = EmulatedPulseOximeter(radio, "C0:00:00:00:03:82", seed=84, stored_records=50)
    await plx.start()
    client_cls, _ = bind_backend(radio)
    try:
        async with BleakClient(plx.address, backend=client_cls, timeout=5.0) as client:
            await client.pair()
            spot = client.services.get_characteristic(uuid128(PLX_SPOT_CHECK_MEASUREMENT))
            racp = client.services.get_characteristic(uuid128(RECORD_ACCESS_CONTROL_POINT))
            assert spot is not None
            assert racp is not None
            answers: list[bytes] = []
            await client.start_notify(spot, lambda _c, _d: None)
            await client.start_notify(racp, lambda _c, data: answers.append(bytes(data)))
            await client.write_gatt_char(racp, encode(RacpRequest.report_all()), response=True)
            with pytest.raises(BleakGATTProtocolError) as refused:
                await client.write_gatt_char(racp, encode(RacpRequest.report_all()), response=True)
            assert int(refused.value.code) == PROCEDURE_ALREADY_IN_PROGRESS
            assert not answers  # the first procedure was still reporting
    finally:
        await plx.stop()
