"""One line of ``narhub doctor``'s report (technician/doctor.py)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, object]:
        """The documented JSON shape: name, ok, detail, hint."""
        return asdict(self)
