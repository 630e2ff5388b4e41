"""The hardware-in-the-loop suite: ``--rig virtual`` (default, in `make test`) or ``--rig FILE``
for a bench. Every test states what hardware it needs; only a bench may lack it (and skips)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hil_rig import Rig, load_rig


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rig",
        default="virtual",
        help="where hil_tests run: 'virtual' (emulated devices, default) or a bench TOML file",
    )
    parser.addoption(
        "--ble-backend",
        default="sim",
        choices=["sim", "bluez"],
        help="the virtual rig's hub BLE backend where a test does not choose one: 'sim' "
        "(default) or 'bluez' (the virtual BlueZ on a private dbus-daemon)",
    )


@pytest.fixture(scope="session")
def rig(request: pytest.FixtureRequest) -> Rig:
    """The rig chosen with --rig."""
    return load_rig(
        str(request.config.getoption("--rig")),
        ble_backend=str(request.config.getoption("--ble-backend")),
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where a home keeps its files (logs, ledger, FHIR output) for the failure report."""
    return tmp_path / "home"
