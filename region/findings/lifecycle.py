"""From conditions to findings: open once, stay open while true, close when it ends (pure).

:func:`reconcile` compares the open findings of a scope (some hubs, or all) with the
conditions true now in that scope:

* a condition whose key has an open finding keeps it open (its detail may change: a battery
  falling from 15 % to 8 % is the same low battery);
* a condition without one opens a finding at the condition's ``since_ms`` (when it became
  true, not when it was noticed), unless a finding with the same key and evidence already
  exists: the store refuses that one (never raised twice from the same data);
* an open finding whose condition is gone closes at ``now_ms``.

A quiet condition (an alert that arrived stale) is recorded closed as soon as it is opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from region.findings.model import Condition, Finding


@dataclass
class Changes:
    """What a judgement changes."""

    opened: list[Condition] = field(default_factory=list)
    updated: list[tuple[Finding, Condition]] = field(default_factory=list)
    closed: list[Finding] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.opened or self.updated or self.closed)


def reconcile(open_findings: Iterable[Finding], current: Iterable[Condition]) -> Changes:
    """The changes that make the open findings match the conditions true now."""
    changes = Changes()
    now_true = {c.key: c for c in current}
    open_by_key = {}
    for finding in open_findings:
        open_by_key[finding.key] = finding
        condition = now_true.get(finding.key)
        if condition is None:
            changes.closed.append(finding)
        elif condition.detail != finding.detail:
            changes.updated.append((finding, condition))
    for key, condition in now_true.items():
        if key not in open_by_key:
            changes.opened.append(condition)
    return changes
