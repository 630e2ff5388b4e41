"""What the patient sees and hears: a status light, a small display, a spoken sentence
(docs/feedback.md). The hub feeds :class:`Feedback` with :mod:`.events` through
:meth:`Feedback.notify`; nothing here is on the path of a reading."""

from gateway.feedback.component import Feedback, FeedbackStats, HubProbe
from gateway.feedback.events import (
    BatchAcknowledged,
    BatteryLevel,
    ClockTrust,
    DeviceSeen,
    FeedbackEvent,
    ReadingStored,
    StatusRequested,
    UplinkConnection,
    stored_events,
)

__all__ = [
    "BatchAcknowledged",
    "BatteryLevel",
    "ClockTrust",
    "DeviceSeen",
    "Feedback",
    "FeedbackEvent",
    "FeedbackStats",
    "HubProbe",
    "ReadingStored",
    "StatusRequested",
    "UplinkConnection",
    "stored_events",
]
