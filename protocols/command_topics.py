"""Topics of remote management (docs/remote-management.md, "Topics").

The broker ACL (:mod:`region.broker_config`) lets a hub read ``narhub/v1/{id}/cmd/#``
and write only below its own ``narhub/v1/{id}/up/``; results therefore go to
``up/cmd/result``, two levels deep so that the receivers' ``narhub/v1/+/up/+`` batch
subscription never sees them.
"""

from __future__ import annotations

PREFIX = "narhub/v1"

#: A hub's MQTT client ids besides its own id (the broker's identity plugin allows exactly
#: these: region/mosquitto/narhub_identity.c): the command session and the renewal probe.
COMMAND_CLIENT_SUFFIX = "-cmd"
RENEWAL_CLIENT_SUFFIX = "-renew"
HUB_CLIENT_SUFFIXES = (COMMAND_CLIENT_SUFFIX, RENEWAL_CLIENT_SUFFIX)


def cmd_filter(hub_id: str) -> str:
    """What the hub subscribes to."""
    return f"{PREFIX}/{hub_id}/cmd/#"


def cmd_topic(hub_id: str, kind: str) -> str:
    """Where the region publishes a command of ``kind`` for ``hub_id``."""
    return f"{PREFIX}/{hub_id}/cmd/{kind}"


def result_topic(hub_id: str) -> str:
    """Where the hub reports every command's result."""
    return f"{PREFIX}/{hub_id}/up/cmd/result"
