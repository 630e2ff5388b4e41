"""The error hierarchy of :mod:`drivers`: one base, structured fields, actionable text."""

from __future__ import annotations


class DriverError(Exception):
    """Base of every error raised by :mod:`drivers`."""


class BackendNotFoundError(DriverError, LookupError):
    """A backend name in the configuration is not known."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        super().__init__(f"unknown {kind} backend {name!r}; known: {', '.join(known)}")


class DeviceUnavailableError(DriverError, ConnectionError):
    """A device could not be reached (out of range, asleep, refused)."""

    def __init__(self, device: str, reason: str) -> None:
        self.device = device
        self.reason = reason
        super().__init__(f"device {device}: {reason}")
