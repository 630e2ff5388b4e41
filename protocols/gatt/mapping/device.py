"""Device observations: the battery charge (MDC_ATTR_VAL_BATT_CHARGE, %)."""

from __future__ import annotations

from decimal import Decimal

from protocols.gatt import observation as obs
from protocols.gatt.device import BatteryLevel
from protocols.gatt.registry import observations


@observations(BatteryLevel)
def battery_observations(m: BatteryLevel) -> list[obs.Observation]:
    """MDC_ATTR_VAL_BATT_CHARGE in %, device data rather than a clinical reading."""
    return [
        obs.Observation(obs.MDC_ATTR_VAL_BATT_CHARGE, None, Decimal(m.level_percent), None, "%")
    ]
