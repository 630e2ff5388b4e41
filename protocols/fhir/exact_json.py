"""FHIR JSON text with exact decimals, and its hash."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

_DECIMAL_MARK = "\u0000dec:"


def _mark_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + str(value)
    if isinstance(value, dict):
        return {k: _mark_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark_decimals(v) for v in value]
    return value


def dumps_exact(resource: dict[str, Any]) -> str:
    """JSON text in which every Decimal is written as its exact digits (``2.0`` stays ``2.0``).

    FHIR's ``decimal`` keeps precision (R4 datatypes, "decimal"); passing through ``float``
    would lose it, so Decimals are emitted verbatim as JSON numbers.
    """
    text = json.dumps(_mark_decimals(resource), separators=(",", ":"), ensure_ascii=False)
    out = []
    start = 0
    needle = '"' + json.dumps(_DECIMAL_MARK)[1:-1]
    while (i := text.find(needle, start)) >= 0:
        end = text.index('"', i + 1)
        out.append(text[start:i])
        out.append(text[i + len(needle) : end])
        start = end + 1
    out.append(text[start:])
    return "".join(out)


def content_hash(resource: dict[str, Any]) -> str:
    """SHA-256 of the exact JSON text (for audit lines)."""
    return hashlib.sha256(dumps_exact(resource).encode()).hexdigest()
