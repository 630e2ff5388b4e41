"""A consent record as an operator's command makes it (the technician's at the hub, the
recipient's at the region): recorded now, by someone, on a basis (docs/consent.md)."""

from __future__ import annotations

from protocols.consent import ConsentRecord, record_from_map


def new_record(
    action: str,
    recipient: str,
    categories: list[str],
    *,
    by: str,
    basis: str,
    recorded_ms: int,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> ConsentRecord:
    """The record, in force from ``from_ms`` (default: when recorded) to ``to_ms`` (default:
    open), checked by :func:`protocols.consent.record_from_map` (its ``ConsentError`` names
    the field it refuses)."""
    return record_from_map(
        {
            "action": action,
            "recipient": recipient,
            "categories": categories,
            "from_ms": recorded_ms if from_ms is None else from_ms,
            "to_ms": to_ms,
            "recorded_by": by,
            "basis": basis,
            "recorded_ms": recorded_ms,
        }
    )
