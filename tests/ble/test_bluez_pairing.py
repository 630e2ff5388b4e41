"""Pairing through BlueZ with the hub's agent, on the virtual BlueZ: what a technician sees.

Each device is an emulated one that pairs the way real ones do (``drivers.ble.sim.security``):
Just Works, a passkey on its display, numeric comparison. The hub's side is the product
code (``drivers.ble.pairing.bond``, the ``bluez`` backend, ``PairingAgent``); BlueZ's side
is the virtual BlueZ.
"""

from __future__ import annotations

import pytest
from vbluez_rig import bus_clients_gone, paired, require_dbus_daemon, thermometer_on_bluez

from drivers.ble import resolve_backend
from drivers.ble._bleak import BleakClient, BleakDBusError, BleakScanner, BLEDevice
from drivers.ble.agent import PairingAgent
from drivers.ble.agent_types import AgentError
from drivers.ble.pairing import PairingFailedError, PairingInput, bond, pair_client
from drivers.ble.sim.radio import SimRadio
from drivers.ble.sim.security import PairingMode
from drivers.ble.sim.thermometer import EmulatedThermometer
from drivers.ble.sim.vbluez import PrivateBus, VirtualBlueZ

JUST_WORKS = "F1:00:00:00:01:01"
PASSKEY = "F1:00:00:00:01:02"
COMPARISON = "F1:00:00:00:01:03"
BLUEZ = resolve_backend("bluez")
FAST = {"scan_timeout_s": 5.0, "connect_timeout_s": 5.0, "pairing_timeout_s": 10.0}


def reads_display(device: EmulatedThermometer) -> PairingInput:
    """The technician types the number the device shows."""

    async def passkey(address: str) -> int:
        assert address == device.address
        return await device.security.passkey_shown()

    return PairingInput(passkey=passkey)


async def bond_fails(address: str, pairing: PairingInput) -> PairingFailedError:
    """The hub's ``bond`` fails; its error."""
    with pytest.raises(PairingFailedError) as failed:
        await bond(BLUEZ, address, pairing, **FAST)
    return failed.value


async def found(address: str) -> BLEDevice:
    """The device, found by bleak's scanner through BlueZ."""
    device = await BleakScanner.find_device_by_address(address, timeout=5.0)
    assert device is not None
    return device


async def test_just_works_device_pairs_without_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    async with thermometer_on_bluez(monkeypatch, JUST_WORKS) as bench:
        await bond(BLUEZ, JUST_WORKS, PairingInput(), **FAST)
        assert bench.paired()
        assert bench.bluez.devices[JUST_WORKS].prop("Trusted")
        assert bench.device.security.pairings == 0  # nothing was displayed


async def test_passkey_device_pairs_with_the_number_it_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with thermometer_on_bluez(monkeypatch, PASSKEY, PairingMode.PASSKEY, seed=5) as bench:
        device = bench.device
        await bond(BLUEZ, PASSKEY, reads_display(device), **FAST)
        assert bench.paired()
        assert device.security.pairings == 1
        # A battery change later: the device forgot its keys; one command pairs it again,
        # with the new number it shows.
        device.security.clear_display()
        await bond(BLUEZ, PASSKEY, reads_display(device), **FAST)
        assert bench.paired()
        assert device.security.pairings == 2


async def test_wrong_passkey_fails_naming_bluez_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with thermometer_on_bluez(monkeypatch, PASSKEY, PairingMode.PASSKEY, seed=5) as bench:

        async def mistyped(_address: str) -> int:
            return (await bench.device.security.passkey_shown() + 1) % 1_000_000

        error = await bond_fails(PASSKEY, PairingInput(passkey=mistyped))
        assert error.bluez_error == "org.bluez.Error.AuthenticationFailed"
        assert error.address == PASSKEY
        assert "did not accept the passkey" in error.reason
        assert "6-digit number the device shows" in error.hint
        assert "org.bluez.Error.AuthenticationFailed" in str(error)
        assert PASSKEY not in str(error)  # the message may reach a log
        assert not bench.paired()


async def test_passkey_device_without_a_passkey_says_to_use_the_passkey_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with thermometer_on_bluez(monkeypatch, PASSKEY, PairingMode.PASSKEY) as bench:
        error = await bond_fails(PASSKEY, PairingInput())
        assert error.bluez_error == "org.bluez.Error.AuthenticationFailed"
        assert "asks for the 6-digit passkey" in error.reason
        assert "--passkey" in error.hint
        assert not bench.paired()


async def test_a_typed_passkey_that_is_not_a_number_is_refused_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with thermometer_on_bluez(monkeypatch, PASSKEY, PairingMode.PASSKEY) as bench:
        typed = PairingInput.asking(lambda _address: "12x456", lambda _address, _n: False)
        error = await bond_fails(PASSKEY, typed)
        assert "not a number" in error.reason
        assert not bench.paired()


async def test_numeric_comparison_is_refused_unless_confirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with thermometer_on_bluez(
        monkeypatch, COMPARISON, PairingMode.NUMERIC_COMPARISON
    ) as bench:
        error = await bond_fails(COMPARISON, PairingInput())
        assert "numeric comparison" in error.reason
        assert error.bluez_error == "org.bluez.Error.AuthenticationFailed"
        assert not bench.paired()

        shown: list[int] = []

        async def matches(address: str, number: int) -> bool:
            shown.append(number)
            return address == COMPARISON and number == bench.device.security.displayed_passkey

        await bond(BLUEZ, COMPARISON, PairingInput(confirm=matches), **FAST)
        assert bench.paired()
        assert len(shown) == 1


async def test_bluez_refuses_a_pairing_with_no_agent_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What bleak alone does (bleak issue 1434): ``Pair`` with no agent anywhere fails."""
    async with thermometer_on_bluez(monkeypatch, JUST_WORKS) as bench:
        device = await found(JUST_WORKS)
        async with BleakClient(device, timeout=5.0) as client:
            with pytest.raises(BleakDBusError) as refused:
                await client.pair()
            assert refused.value.dbus_error == "org.bluez.Error.AuthenticationFailed"
            # The same pairing with the hub's agent registered goes through.
            async with PairingAgent() as agent:
                attempt = await agent.pair(device.details["path"])
        assert attempt.requests == []
        assert bench.paired()


async def test_agent_refuses_requests_for_a_device_it_is_not_pairing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with (
        thermometer_on_bluez(monkeypatch, PASSKEY, PairingMode.PASSKEY) as bench,
        PairingAgent(passkey=lambda _a: bench.device.security.passkey_shown()),
    ):
        # Another program (no agent of its own) pairs: BlueZ asks the hub's default agent,
        # which is not pairing anything and refuses.
        async with BleakClient(await found(PASSKEY), timeout=5.0) as client:
            with pytest.raises(BleakDBusError) as refused:
                await client.pair()
        assert refused.value.dbus_error == "org.bluez.Error.AuthenticationFailed"
        assert not bench.paired()


async def test_the_agent_registers_again_after_bluetoothd_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bluetoothd forgets its agents when it restarts; the hub's agent notices and registers
    again before the next pairing (no pairing without an agent, even then)."""
    require_dbus_daemon()
    radio = SimRadio()
    async with PrivateBus() as bus, EmulatedThermometer(radio, JUST_WORKS):
        assert bus.address is not None
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address)
        agent = PairingAgent()
        with pytest.raises(AgentError, match="bluetoothd is not on the bus"):
            await agent.ensure_registered()  # the hub started before bluetoothd
        try:
            async with VirtualBlueZ(radio, bus.address):
                await agent.ensure_registered()
                assert agent.registered
            async with VirtualBlueZ(radio, bus.address) as restarted:
                assert not agent.registered  # the name changed owner twice
                device = await found(JUST_WORKS)
                async with BleakClient(device, timeout=5.0) as client:
                    await pair_client(client, BLUEZ, agent, device=device)
                assert agent.registered
                assert paired(restarted, radio, JUST_WORKS)
        finally:
            await agent.close()
    await bus_clients_gone()
