"""Findings: what the region notices on its own clock, for the care team's worklist.

A **care plan** (:mod:`region.findings.plan`) says what a patient is expected to measure and
when. The receiver records what arrives (:mod:`region.findings.facts`: readings filed to a
patient, the hubs' retained status, held readings) with the region's **ingestion time**, never
a device's or a hub's clock. Pure policy functions (:mod:`region.findings.policy`) turn those
facts and the plan into the **conditions** true now (a missed measurement, a silent hub, a
device not seen, a low battery, a device clock off, an alert reading, readings held
unattributed); :func:`region.findings.lifecycle.reconcile` turns conditions into findings that
open once, stay open while their condition lasts and close by themselves when it ends. A
person acknowledges a finding (who, when); a finding is never raised twice from the same data
(the store refuses a second finding with the same key and evidence).

State lives behind seams (:mod:`region.findings.store`; SQLite in the region's state
database). Each finding is also a FHIR resource (:mod:`region.findings.fhir`): docs/region.md,
"Findings", says which resource each one is and why.
"""
