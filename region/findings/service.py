"""The findings in the region's service: the status watcher, the periodic judgement and the
FHIR NDJSON of the findings (the I/O around :class:`region.findings.engine.FindingsEngine`).

The status watcher subscribes (not shared: every status, retained ones included) to
``narhub/v1/+/status`` with its own client id; the receiver's shared subscription never
gets retained messages (MQTT 5.0 section 4.8.2: retained messages are not sent for a shared
subscription). A document that cannot be read is logged (its field, never its content) and
skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from drivers.mqtt import MqttLink
from protocols.fhir import dumps_exact
from region.findings.engine import EVALUATE_EVERY_S, FindingsEngine
from region.findings.errors import StatusDocumentError
from region.findings.facts import HubStatus, StatusSeen, parse_status
from region.findings.fhir import resource
from region.findings.model import Finding

logger = logging.getLogger(__name__)

STATUS_FILTER = "narhub/v1/+/status"


def hub_of_status_topic(topic: str) -> str | None:
    """The hub a ``narhub/v1/{hub}/status`` topic names (None for another topic)."""
    parts = topic.split("/")
    if len(parts) == 4 and parts[:2] == ["narhub", "v1"] and parts[3] == "status" and parts[2]:
        return parts[2]
    return None


def to_engine(engine: FindingsEngine) -> Callable[[HubStatus, bool], None]:
    """A status callback that records into ``engine`` at its clock's now (ingestion time)."""

    def seen(status: HubStatus, retained: bool) -> None:
        engine.status(StatusSeen(status, engine.clock_ms(), retained))

    return seen


async def watch_status(
    connect: Callable[[], AbstractAsyncContextManager[MqttLink]],
    on_status: Callable[[HubStatus, bool], None],
    *,
    subscribed: asyncio.Event | None = None,
) -> None:
    """Hand every hub's status document (and whether it came from the broker's retained
    store) to ``on_status`` until cancelled or the connection drops."""
    async with connect() as link:
        await link.subscribe(STATUS_FILTER)
        if subscribed is not None:
            subscribed.set()
        async for message in link.messages():
            hub = hub_of_status_topic(message.topic)
            if hub is None:
                continue
            try:
                status = parse_status(hub, message.payload)
            except StatusDocumentError as exc:
                logger.warning("a hub's status document refused: %s: %s", exc.field, exc.reason)
                continue
            on_status(status, message.retain)


async def evaluate_every(engine: FindingsEngine, interval_s: float = EVALUATE_EVERY_S) -> None:
    """Judge every hub now and every ``interval_s`` (until cancelled). In the event loop's
    thread: the stores' connections belong to it (10,000 patients take well under a second:
    `narhub bench worklist`)."""
    while True:
        engine.evaluate()
        await asyncio.sleep(interval_s)


class FindingsNdjson:
    """Appends each changed finding's FHIR resource to an NDJSON file (fsynced)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, findings: list[Finding]) -> None:
        """Write the resources of ``findings``."""
        if not findings:
            return
        lines = [dumps_exact(resource(f)) + "\n" for f in findings]
        with self.path.open("ab") as out:
            out.writelines(line.encode() for line in lines)
            out.flush()
            os.fsync(out.fileno())
