"""drivers.serial without a port: ACK only after commit, rollback on a failed commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from drivers.serial import SensorBoardLink
from drivers.serial._pyserial import PortInfo
from drivers.serial.discovery import find_boards
from protocols.sensorlink import (
    Ack,
    Hello,
    ReadingRow,
    Readings,
    Role,
    SensorLinkConnection,
    SequencedReading,
)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def acks(transport: FakeTransport) -> list[object]:
    board = SensorLinkConnection(Role.BOARD)
    return [e for w in transport.written for e in board.receive_data(w) if isinstance(e, Ack)]


HELLO = Hello(1, "b1", 5, "0.1.0", (), 15, 512, 0)


def wired(link: SensorBoardLink) -> FakeTransport:
    t = FakeTransport()
    link._conn = SensorLinkConnection()
    link._transport = t
    return t


async def test_ack_is_written_only_after_commit_returns() -> None:
    seen_acks_during_commit: list[int] = []
    transport: FakeTransport

    async def commit(batch: Sequence[SequencedReading]) -> None:
        seen_acks_during_commit.append(len(acks(transport)))

    link = SensorBoardLink("unused", commit)
    transport = wired(link)
    r = ReadingRow(1, 0, 10, 2150)
    await link._handle([HELLO, Readings(5, 0, 0, (r, r, r))])
    assert seen_acks_during_commit == [0]
    assert acks(transport) == [Ack(5, 2)]


async def test_failed_commit_sends_no_ack_and_the_resend_is_accepted() -> None:
    calls: list[list[int]] = []

    async def commit(batch: Sequence[SequencedReading]) -> None:
        calls.append([x.seq for x in batch])
        if len(calls) == 1:
            raise OSError("disk full")

    link = SensorBoardLink("unused", commit)
    transport = wired(link)
    r = ReadingRow(1, 0, 10, 2150)
    with pytest.raises(OSError, match="disk full"):
        await link._handle([HELLO, Readings(5, 0, 0, (r, r))])
    assert acks(transport) == []
    await link._handle([Readings(5, 0, 0, (r, r))])
    assert calls == [[0, 1], [0, 1]]
    assert acks(transport) == [Ack(5, 1)]


def test_boards_are_found_by_usb_vid_pid() -> None:
    ports = [
        PortInfo("/dev/ttyACM0", 0x2E8A, 0x0005, "E6614103E7452D2F", "MicroPython", "Board", "x"),
        PortInfo("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "Silicon Labs", "CP2102", "y"),
        PortInfo("/dev/ttyS0", None, None, None, None, None, "z"),
        PortInfo("/dev/ttyACM1", 0x1234, 0x5678, "1", None, None, "w"),
    ]
    found = find_boards(ports)
    assert [(b.device, b.board, b.serial_number) for b in found] == [
        ("/dev/ttyACM0", "rp2040", "E6614103E7452D2F"),
        ("/dev/ttyUSB0", "esp32", "0001"),
    ]
