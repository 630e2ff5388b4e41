"""The hub configuration (TOML), validated so that every error names the key that is wrong."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; ``problems`` lists key: message."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceConfig(_Model):
    """A paired BLE device: its address and what it is."""

    address: str = Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    kind: Literal[
        "thermometer", "blood_pressure", "scale", "pulse_oximeter", "glucose", "heart_rate"
    ]


class BleConfig(_Model):
    """BLE: which backend and which devices are allowlisted."""

    backend: Literal["bluez", "sim"] = "bluez"
    devices: list[DeviceConfig] = []


class BoardConfig(_Model):
    """A MicroPython sensor board: ``serial:/dev/ttyACM0`` or ``serial:usb:SERIALNUMBER``."""

    port: str = Field(pattern=r"^serial:.+")


class SensorsConfig(_Model):
    """The sensor boards attached over USB serial."""

    boards: list[BoardConfig] = []


class UplinkConfig(_Model):
    """The region broker and this hub's TLS identity."""

    host: str
    port: int = Field(default=8883, ge=1, le=65535)
    ca_file: Path
    cert_file: Path
    key_file: Path
    tls_min_version: Literal["1.2", "1.3"] = "1.3"
    batch_window_s: float = Field(default=1.0, gt=0, le=300)


class HubConfig(_Model):
    """The whole hub configuration."""

    hub_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")
    data_dir: Path
    ble: BleConfig = BleConfig()
    sensors: SensorsConfig = SensorsConfig()
    uplink: UplinkConfig


def parse_config(data: dict[str, object], *, path: Path) -> HubConfig:
    """Validate already-parsed TOML; errors name the dotted key (``ble.devices[0].address``)."""
    try:
        return HubConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ""
            for part in err["loc"]:
                key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
            problems.append(f"{key or '(top level)'}: {err['msg']}")
        raise ConfigError(path, problems) from None


def load_config(path: Path) -> HubConfig:
    """Read and validate a TOML configuration file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return parse_config(data, path=path)
