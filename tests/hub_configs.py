"""A hub's configuration as the technician writes it (`narhub hub init`,
technician/provision.py), trusting the rig's CA (rig/broker.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.pki import Identity
from gateway.config import HubConfig, render_config
from rig.broker import RigPki
from technician.provision import init_hub


def provisioned(
    path: Path, rig_pki: RigPki, hub_id: str, data_dir: Path, **options: Any
) -> HubConfig:
    """A new configuration at ``path`` (``options``: init_hub's own; ``broker_url`` defaults
    to ``mqtts://b.example``, ``patient_pseudonym`` to none)."""
    given = {"broker_url": "mqtts://b.example", "patient_pseudonym": None} | options
    return init_hub(path, hub_id=hub_id, ca_file=rig_pki.ca_file, data_dir=data_dir, **given)


def write_as(path: Path, config: HubConfig, identity: Identity) -> Path:
    """Write ``config`` to ``path`` with its uplink connecting as ``identity`` (a certificate
    the rig's CA issued, in place of the one the technician would install); ``path``."""
    uplink = config.uplink.model_copy(
        update={"cert_file": identity.cert_file, "key_file": identity.key_file}
    )
    path.write_text(render_config(config.model_copy(update={"uplink": uplink})))
    return path


#: The region as a ``[[recipients]]`` entry of a hub's configuration (docs/consent.md).
REGION_RECIPIENT = """
[[recipients]]
name = "region"
host = "broker.region.example"
ca_file = "/etc/narhub/ca.crt"
cert_file = "/etc/narhub/hub.crt"
key_file = "/etc/narhub/hub.key"
"""


def municipality_recipient(port: int | None = None) -> str:
    """A municipality as a second ``[[recipients]]`` entry, on a broker of its own (on
    ``port``, else the default)."""
    port_line = "" if port is None else f"port = {port}\n"
    return f"""
[[recipients]]
name = "municipality"
host = "broker.kommun.example"
{port_line}ca_file = "/etc/narhub/kommun-ca.crt"
cert_file = "/etc/narhub/kommun-hub.crt"
key_file = "/etc/narhub/kommun-hub.key"
"""
