"""Serial sensor boards: discovery by USB IDs and the hub end of the sensor link.

pyserial and pyserial-asyncio-fast are imported only in :mod:`drivers.serial._pyserial`.
"""

from drivers.serial.discovery import KNOWN_BOARDS, BoardPort, find_boards, resolve_port
from drivers.serial.link import CommitFn, SensorBoardLink, WallClockFn

__all__ = [
    "KNOWN_BOARDS",
    "BoardPort",
    "CommitFn",
    "SensorBoardLink",
    "WallClockFn",
    "find_boards",
    "resolve_port",
]
