"""The sensor link between the hub and MicroPython sensor boards (sans-I/O).

Spec: ``docs/protocols/sensor-link.md`` (CDDL: ``docs/protocols/sensor-link.cddl``); test
vectors shared with the firmware: ``protocols/sensorlink/vectors/sensor-link-vectors.json``.
"""

from protocols.sensorlink.connection import Event, LinkCounters, Role, SensorLinkConnection
from protocols.sensorlink.delivery import Accepted, DeliveryTracker, SequencedReading
from protocols.sensorlink.framing import MAX_FRAME_BYTES, BadFrame, BadFrameReason
from protocols.sensorlink.messages import (
    PROTOCOL_VERSION,
    SENSOR_KINDS,
    Ack,
    Capability,
    Config,
    Error,
    ErrorCode,
    Hello,
    HubHello,
    Message,
    MessageType,
    Ping,
    Pong,
    ReadingRow,
    Readings,
    Reboot,
    SelfTest,
    SensorKind,
    SensorRef,
    Time,
    UnknownMessage,
)

__all__ = [
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "SENSOR_KINDS",
    "Accepted",
    "Ack",
    "BadFrame",
    "BadFrameReason",
    "Capability",
    "Config",
    "DeliveryTracker",
    "Error",
    "ErrorCode",
    "Event",
    "Hello",
    "HubHello",
    "LinkCounters",
    "Message",
    "MessageType",
    "Ping",
    "Pong",
    "ReadingRow",
    "Readings",
    "Reboot",
    "Role",
    "SelfTest",
    "SensorKind",
    "SensorLinkConnection",
    "SensorRef",
    "SequencedReading",
    "Time",
    "UnknownMessage",
]
