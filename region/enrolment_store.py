"""Where the region keeps enrolments and the readings no enrolment covers yet: the seam.

:class:`EnrolmentStore` is what the CLI (``narhub region enrol|unenrol|enrolments|
unattributed``) and the receiver (:mod:`region.filing`) use. One receiver on one machine keeps
it in SQLite (:class:`region.enrolment_sqlite.SqliteEnrolmentStore`, in the receiver's state
database); several receivers share it in another database behind the same protocol. An
implementation must:

* refuse an enrolment that overlaps another of the same scope **atomically** (two operators
  enrolling at once cannot both win): :func:`region.enrolment.conflict` inside one
  transaction that also inserts;
* make :meth:`EnrolmentStore.hold` idempotent on the held reading's key (a batch delivered
  twice holds its readings once) and durable when it returns (the receiver acknowledges the
  batch only after);
* keep SQL plain (tables, primary keys, ``INSERT``/``UPDATE``/``DELETE``), so that the same
  schema serves SQLite and PostgreSQL;
* when it lives in the receivers' state database (PostgreSQL,
  :class:`region.enrolment_pg.PostgresEnrolmentStore`), hand a filing's writes to the state
  (:meth:`EnrolmentStore.joint`) so they commit in the batch's own transaction; a store that
  writes them itself (SQLite) returns ``None`` there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from protocols.uplink.wire_reading import WireReading
from region.enrolment import Enrolment, EnrolmentRequest
from region.state import JointWrites


@dataclass(frozen=True, slots=True)
class HeldReading:
    """A reading no enrolment covered when it arrived, kept until one does."""

    #: Identity of the reading (:func:`protocols.fhir.identity.held_key`).
    key: str
    hub: str
    reading: WireReading
    #: When the region received it (epoch ms).
    held_ms: int


class EnrolmentStore(Protocol):
    """Enrolments and held readings (see the module docstring for the rules)."""

    def enrol(self, request: EnrolmentRequest) -> Enrolment:
        """Store a checked request (:func:`region.enrolment.check_request`); raises
        :class:`region.enrolment.OverlapError` if it overlaps one of its scope."""
        ...

    def unenrol(self, hub: str, device: str | None, at_ms: int) -> Enrolment:
        """End the enrolment of the hub (``device`` ``None``) or device covering ``at_ms``
        at that time (withdraw it when that is its start). Raises
        :class:`region.enrolment.NotEnrolledError` or the errors of
        :func:`region.enrolment.check_end`. Returns the enrolment as it was."""
        ...

    def enrolments(self, hub: str | None = None) -> list[Enrolment]:
        """The enrolments (of one hub), by hub, device and start."""
        ...

    def note_filed(self, filed: Mapping[int, int]) -> None:
        """Record, per enrolment id, the latest effective time (epoch ms) filed to it."""
        ...

    def hold(self, held: Sequence[HeldReading]) -> int:
        """Keep readings no enrolment covers (idempotent on the key); returns how many were
        new."""
        ...

    def held(self, hub: str | None = None) -> list[HeldReading]:
        """The held readings (of one hub), in the order they were held."""
        ...

    def held_hubs(self) -> list[str]:
        """The hubs that have held readings."""
        ...

    def release(self, keys: Sequence[str]) -> None:
        """Forget held readings that were filed (after their output was written)."""
        ...

    def joint(
        self,
        hub: str,
        attributed_by: Sequence[Enrolment],
        *,
        held: Sequence[HeldReading] = (),
        filed: Mapping[int, int] | None = None,
        released: Sequence[str] = (),
    ) -> JointWrites | None:
        """A filing's writes (readings to hold, per enrolment id the latest time filed, held
        keys released), for the state to apply in its batch transaction after checking that
        the hub's enrolments are still ``attributed_by``; ``None``: this store is in another
        database and the filer writes them itself (:meth:`hold`, :meth:`note_filed`,
        :meth:`release`)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
