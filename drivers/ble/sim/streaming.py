"""The base of an emulated device that streams: one notification every ``interval_s`` while
a central has notifications enabled on the streamed characteristic (a strap's Heart Rate
Measurement 0x2A37, HRS 1.0 section 3.1; an oximeter's PLX Continuous Measurement 0x2A5F,
PLXS 1.0 section 3.2). A value not delivered (the link dropped) is not sent again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from drivers.ble.sim._bumble import Characteristic
from drivers.ble.sim.peripheral import EmulatedDevice
from drivers.ble.sim.radio import SimRadio


class StreamingDevice(EmulatedDevice):
    """A device whose subclass names the streamed characteristic and its next value."""

    def __init__(
        self, radio: SimRadio, address: str, *, interval_s: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(radio, address, **kwargs)
        self.interval_s = interval_s
        #: Stream notifications sent.
        self.sent = 0

    def streamed(self) -> Characteristic[bytes]:
        """The characteristic the stream notifies."""
        raise NotImplementedError

    def next_streamed(self) -> bytes:
        """The stream's next value."""
        raise NotImplementedError

    def on_started(self) -> None:
        """Start the stream."""
        self.spawn(self._stream(), "stream")

    async def _stream(self) -> None:
        characteristic = self.streamed()
        while True:
            await self.wait_until(lambda: self.subscribed(characteristic, indicate=False))
            payload = self.corrupt(self.next_streamed())
            if await self.send(characteristic, payload, indicate=False):
                self.sent += 1
            await asyncio.sleep(self.interval_s)
