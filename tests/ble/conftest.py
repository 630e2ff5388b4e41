"""The BLE tests' rig as a fixture: a test parametrised on ``backend`` asks for ``rig``."""

from __future__ import annotations

import pytest
from ble_rig import Rig


@pytest.fixture
def rig(backend: str, monkeypatch: pytest.MonkeyPatch) -> Rig:
    """A fresh emulated radio on the test's backend (``sim`` or ``bluez``)."""
    return Rig(backend, monkeypatch)
