"""Pairing through BlueZ with the hub's agent, on the virtual BlueZ: what a technician sees.

Each device is an emulated one that pairs the way real ones do (``drivers.ble.sim.security``):
Just Works, a passkey on its display, numeric comparison. The hub's side is the product
code (``drivers.ble.pairing.bond``, the ``bluez`` backend, ``PairingAgent``); BlueZ's side
is the virtual BlueZ.
"""

from __future__ import annotations

import pytest
from vbluez_rig import bus_clients_gone, require_dbus_daemon, virtual_bluez

from drivers.ble import resolve_backend
from drivers.ble._bleak import BleakClient, BleakDBusError, BleakScanner
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


def paired(bluez: VirtualBlueZ, radio: SimRadio, address: str) -> bool:
    """BlueZ says Paired and Bonded, and the adapter holds the device's keys."""
    device = bluez.devices.get(address)
    return (
        device is not None
        and bool(device.prop("Paired"))
        and bool(device.prop("Bonded"))
        and address in {k.removesuffix("/P").upper() for k in radio.central_keys()}
    )


def reads_display(device: EmulatedThermometer) -> PairingInput:
    """The technician types the number the device shows."""

    async def passkey(address: str) -> int:
        assert address == device.address
        return await device.security.passkey_shown()

    return PairingInput(passkey=passkey)


async def test_just_works_device_pairs_without_questions(monkeypatch: pytest.MonkeyPatch) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, JUST_WORKS) as device,
    ):
        await bond(BLUEZ, JUST_WORKS, PairingInput(), **FAST)
        assert paired(bluez, radio, JUST_WORKS)
        assert bluez.devices[JUST_WORKS].prop("Trusted")
        assert device.security.pairings == 0  # nothing was displayed


async def test_passkey_device_pairs_with_the_number_it_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, PASSKEY, pairing=PairingMode.PASSKEY, seed=5) as device,
    ):
        await bond(BLUEZ, PASSKEY, reads_display(device), **FAST)
        assert paired(bluez, radio, PASSKEY)
        assert device.security.pairings == 1
        # A battery change later: the device forgot its keys; one command pairs it again,
        # with the new number it shows.
        device.security.clear_display()
        await bond(BLUEZ, PASSKEY, reads_display(device), **FAST)
        assert paired(bluez, radio, PASSKEY)
        assert device.security.pairings == 2


async def test_wrong_passkey_fails_naming_bluez_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, PASSKEY, pairing=PairingMode.PASSKEY, seed=5) as device,
    ):

        async def mistyped(_address: str) -> int:
            return (await device.security.passkey_shown() + 1) % 1_000_000

        with pytest.raises(PairingFailedError) as failed:
            await bond(BLUEZ, PASSKEY, PairingInput(passkey=mistyped), **FAST)
        error = failed.value
        assert error.bluez_error == "org.bluez.Error.AuthenticationFailed"
        assert error.address == PASSKEY
        assert "did not accept the passkey" in error.reason
        assert "6-digit number the device shows" in error.hint
        assert "org.bluez.Error.AuthenticationFailed" in str(error)
        assert PASSKEY not in str(error)  # the message may reach a log
        assert not paired(bluez, radio, PASSKEY)


async def test_passkey_device_without_a_passkey_says_to_use_the_passkey_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, PASSKEY, pairing=PairingMode.PASSKEY),
    ):
        with pytest.raises(PairingFailedError) as failed:
            await bond(BLUEZ, PASSKEY, PairingInput(), **FAST)
        assert failed.value.bluez_error == "org.bluez.Error.AuthenticationFailed"
        assert "asks for the 6-digit passkey" in failed.value.reason
        assert "--passkey" in failed.value.hint
        assert not paired(bluez, radio, PASSKEY)


async def test_a_typed_passkey_that_is_not_a_number_is_refused_saying_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, PASSKEY, pairing=PairingMode.PASSKEY),
    ):
        typed = PairingInput.asking(lambda _address: "12x456", lambda _address, _n: False)
        with pytest.raises(PairingFailedError) as failed:
            await bond(BLUEZ, PASSKEY, typed, **FAST)
        assert "not a number" in failed.value.reason
        assert not paired(bluez, radio, PASSKEY)


async def test_numeric_comparison_is_refused_unless_confirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, COMPARISON, pairing=PairingMode.NUMERIC_COMPARISON) as dev,
    ):
        with pytest.raises(PairingFailedError) as failed:
            await bond(BLUEZ, COMPARISON, PairingInput(), **FAST)
        assert "numeric comparison" in failed.value.reason
        assert failed.value.bluez_error == "org.bluez.Error.AuthenticationFailed"
        assert not paired(bluez, radio, COMPARISON)

        shown: list[int] = []

        async def matches(address: str, number: int) -> bool:
            shown.append(number)
            return address == COMPARISON and number == dev.security.displayed_passkey

        await bond(BLUEZ, COMPARISON, PairingInput(confirm=matches), **FAST)
        assert paired(bluez, radio, COMPARISON)
        assert len(shown) == 1


async def test_bluez_refuses_a_pairing_with_no_agent_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What bleak alone does (bleak issue 1434): ``Pair`` with no agent anywhere fails."""
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, JUST_WORKS),
    ):
        device = await BleakScanner.find_device_by_address(JUST_WORKS, timeout=5.0)
        assert device is not None
        async with BleakClient(device, timeout=5.0) as client:
            with pytest.raises(BleakDBusError) as refused:
                await client.pair()
            assert refused.value.dbus_error == "org.bluez.Error.AuthenticationFailed"
            # The same pairing with the hub's agent registered goes through.
            async with PairingAgent() as agent:
                attempt = await agent.pair(device.details["path"])
        assert attempt.requests == []
        assert paired(bluez, radio, JUST_WORKS)


async def test_agent_refuses_requests_for_a_device_it_is_not_pairing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    radio = SimRadio()
    async with (
        virtual_bluez(radio, monkeypatch) as bluez,
        EmulatedThermometer(radio, PASSKEY, pairing=PairingMode.PASSKEY) as device,
        PairingAgent(passkey=lambda _a: device.security.passkey_shown()),
    ):
        # Another program (no agent of its own) pairs: BlueZ asks the hub's default agent,
        # which is not pairing anything and refuses.
        found = await BleakScanner.find_device_by_address(PASSKEY, timeout=5.0)
        assert found is not None
        async with BleakClient(found, timeout=5.0) as client:
            with pytest.raises(BleakDBusError) as refused:
                await client.pair()
        assert refused.value.dbus_error == "org.bluez.Error.AuthenticationFailed"
        assert not paired(bluez, radio, PASSKEY)


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
                device = await BleakScanner.find_device_by_address(JUST_WORKS, timeout=5.0)
                assert device is not None
                async with BleakClient(device, timeout=5.0) as client:
                    await pair_client(client, BLUEZ, agent, device=device)
                assert agent.registered
                assert paired(restarted, radio, JUST_WORKS)
        finally:
            await agent.close()
    await bus_clients_gone()
