"""The findings' errors: one base, each also the matching builtin, with structured fields."""

from __future__ import annotations


class FindingsError(Exception):
    """Base of every error of :mod:`region.findings` and :mod:`region.worklist`."""


class StatusDocumentError(FindingsError, ValueError):
    """A hub's status document that cannot be read: ``field`` names where, ``reason`` what."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"status document {field}: {reason}")


class UnknownFindingError(FindingsError, LookupError):
    """No finding with ``finding_id``."""

    def __init__(self, finding_id: int) -> None:
        self.finding_id = finding_id
        super().__init__(f"no finding {finding_id}")
