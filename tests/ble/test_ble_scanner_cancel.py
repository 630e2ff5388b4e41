"""A cancellation lost while the scanner starts must still end the scanner.

Python 3.11's :func:`asyncio.wait_for` returns the result and drops a cancellation that lands
in the same loop iteration as the awaited reply (the inner future is done when the
``CancelledError`` arrives). bumble's host awaits every HCI command's reply that way, so a
central shut down while its scanner was (re)starting went on with ``cancelling() == 1`` and
no ``CancelledError``; the watchdog loop then ran for ever as long as devices advertised
(the silent-scanner watchdog test hung until pytest's timeout about once in twenty runs on a
busy machine). Here the race is made deterministic: the emulated scanner's start awaits a
reply that arrives together with the cancel, and drops the cancel exactly as ``wait_for``
does.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from drivers.ble.backends import BleBackend
from drivers.ble.scanner import AllowlistScanner
from drivers.ble.sim.backend import SimBleakScanner, bind_backend
from drivers.ble.sim.heart_rate import EmulatedHeartRateStrap
from drivers.ble.sim.radio import SimRadio

#: Far more than the scanner needs to end once cancelled; without the fix it never does.
_END_BOUND_S = 5.0


class _ReplyRace:
    """The moment a scanner start waits for its controller's reply, and that reply."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.reply: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class _CancelLosingScanner(SimBleakScanner):
    """The emulated scanner; its start ends with a reply that can race a cancellation."""

    race: ClassVar[_ReplyRace]

    async def start(self) -> None:
        await super().start()  # scanning: advertisements flow from here on
        race = type(self).race
        race.waiting.set()
        try:
            await race.reply
        except asyncio.CancelledError:
            if not race.reply.done():
                raise
            # The reply won the race: asyncio.wait_for (3.11) returns it, the cancel is lost.


async def test_a_cancel_lost_while_the_scanner_starts_still_ends_the_scanner() -> None:
    radio = SimRadio()
    strap = EmulatedHeartRateStrap(radio, "C0:00:00:00:03:71", seed=97)
    await strap.start()  # advertising; nothing connects, so it keeps advertising
    race = _ReplyRace()
    client_cls, scanner_cls = bind_backend(radio)
    lossy = type("CancelLosingScanner", (_CancelLosingScanner, scanner_cls), {"race": race})
    scanner = AllowlistScanner(
        BleBackend("sim", client_cls, lossy),
        {strap.address},
        scanning_mode="active",
        watchdog_s=0.5,
        restart_delay_s=0.05,
    )
    task = asyncio.create_task(scanner.run(), name="ble-scanner")
    try:
        await race.waiting.wait()
        # The air is busy: the strap's advertisements keep the watchdog from firing.
        await scanner.wait_for(strap.address, fresh_s=1.0)
        race.reply.set_result(None)
        task.cancel()  # lands with the reply, before the scanner task runs again
        done, _ = await asyncio.wait({task}, timeout=_END_BOUND_S)
        assert task in done, (
            f"the scanner ignored a lost cancellation for {_END_BOUND_S}s "
            f"({scanner.advertisements} advertisements heard meanwhile)"
        )
        assert task.cancelled()
        assert not scanner.running.is_set()
        assert scanner.restarts == 0  # it ended; it did not restart
    finally:
        if not task.done():
            task.cancel()  # a second cancel reaches it (the first was the lost one)
            await asyncio.wait({task})
        await strap.stop()
