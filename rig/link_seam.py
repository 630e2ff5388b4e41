"""The base of the rig's stand-ins for :class:`drivers.mqtt.MqttLink` at the uplink's seam
(:class:`gateway.uplink.Uplink`'s ``connect``: a factory of async context managers that
publish): the factory is the link itself, and entering or leaving it connects nothing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class OwnLink(ABC):
    """A link that is its own factory and context manager; subclasses say what a PUBLISH
    does and which PUBACK reason code (MQTT 5.0, 3.4.2.1) it gets."""

    def __call__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    @abstractmethod
    async def publish(self, topic: str, payload: bytes) -> int:
        """Publish ``payload``; the PUBACK reason code."""
