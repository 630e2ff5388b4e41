"""The region broker's Mosquitto configuration: mutual TLS, identity from the certificate, ACL.

One source for both the region (``narhub region broker-config``) and the virtual rig: TLS 1.3,
``require_certificate``, the identity plugin (:mod:`region.broker_plugin`: the certificate's CN
is the MQTT user, and a client id can only be used with its own certificate),
a CRL when the region CA has revoked certificates, and an ACL under which a hub writes only
below ``narhub/v1/{its id}/`` and the receivers (CN ``region-receiver``) read every hub.
Operators (CN ``region-operator``, ``narhub region send``) may publish signed commands to every
hub's ``cmd/`` topics and read the results hubs report on ``up/cmd/`` (docs/remote-management.md);
the hub still executes only what the region's command key signed.

Other recipients on the same broker (docs/consent.md, "Each recipient reads only its own"):
each gets its own tree ``narhub/v1/r/{recipient}/{hub}/...`` (a hub id has at least three
characters, so ``r`` is never one), its receivers (CN ``{recipient}-receiver``) read only that
tree, and the region's receivers then read only the hubs' own ``up/`` and ``status`` topics
instead of all of ``narhub/v1/#``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RECEIVER_USER = "region-receiver"
#: The certificate CN of the region's command sender (``narhub region send``).
OPERATOR_USER = "region-operator"


def recipient_root(recipient: str) -> str:
    """The topic tree of a recipient other than the region on a shared broker."""
    return f"narhub/v1/r/{recipient}"


def recipient_receiver(recipient: str) -> str:
    """The certificate CN of a recipient's receivers."""
    return f"{recipient}-receiver"


def acl_text(
    receivers: tuple[str, ...] = (RECEIVER_USER,),
    operators: tuple[str, ...] = (OPERATOR_USER,),
    recipients: tuple[str, ...] = (),
) -> str:
    """The ACL (Mosquitto ``acl_file`` syntax; ``%u`` is the username = certificate CN).

    ``recipients``: the other recipients sharing this broker, each in its own tree."""
    lines = [
        "# hubs: MQTT user = certificate CN = hub id",
        "pattern write narhub/v1/%u/up/#",
        "pattern readwrite narhub/v1/%u/status",
        "pattern read narhub/v1/%u/cmd/#",
    ]
    for recipient in recipients:
        root = recipient_root(recipient)
        lines += [f"pattern write {root}/%u/up/#", f"pattern readwrite {root}/%u/status"]
    region_reads = ["narhub/v1/+/up/#", "narhub/v1/+/status"] if recipients else ["narhub/v1/#"]
    for receiver in receivers:
        lines += [f"user {receiver}", *(f"topic read {t}" for t in region_reads)]
    for recipient in recipients:
        root = recipient_root(recipient)
        lines += [
            f"user {recipient_receiver(recipient)}",
            f"topic read {root}/+/up/#",
            f"topic read {root}/+/status",
        ]
    for operator in operators:
        lines += [
            f"user {operator}",
            "topic write narhub/v1/+/cmd/#",
            "topic read narhub/v1/+/up/cmd/#",
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BrokerTls:
    """The broker's TLS material."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    crl_file: Path | None = None
    tls_version: str = "1.3"


def mosquitto_conf(
    *,
    port: int,
    bind: str,
    tls: BrokerTls,
    acl_file: Path,
    persistence_dir: Path | None = None,
    run_as_user: str | None = None,
    identity_plugin: Path | None = None,
    plugin_options: dict[str, str] | None = None,
    log_types: tuple[str, ...] = ("error", "warning", "notice", "information"),
) -> str:
    """The broker configuration (Mosquitto 2.0 syntax).

    ``identity_plugin``: the built :mod:`region.broker_plugin` (with its ``plugin_options``):
    the certificate's CN becomes the username and the client id must belong to it. Without
    it, ``use_identity_as_username`` makes the CN the username but leaves client ids free
    (any valid certificate may take over any session): for tests of that weakness only."""
    lines = [
        *([f"user {run_as_user}"] if run_as_user else []),
        "per_listener_settings false",
        "allow_anonymous false",
        f"acl_file {acl_file}",
        "log_dest stderr",
        *(f"log_type {t}" for t in log_types),
        "max_inflight_messages 20",
        # A hub deletes a batch once the broker has it (PUBACK): the broker must then never
        # drop it. Mosquitto's default queue (1000 messages per client) silently discards
        # what an offline receiver session would get beyond that; no practical limit here
        # (2e9 messages: Mosquitto 2.0.11's own "0 = no limit" disconnects a client whose
        # publish the ACL denies instead of answering 0x87, so a large number). A receiver
        # session never expires (``ingest`` asks for that; ``persistent_client_expiration`` is
        # left unset), so a receiver that comes back gets its share of the shared
        # subscription; one retired for good must be drained once under its client id.
        "max_queued_messages 2000000000",
        "max_queued_bytes 0",
    ]
    if persistence_dir is None:
        lines.append("persistence false")
    else:
        # Save after every change: queued QoS 1 messages for receivers survive a restart.
        lines += [
            "persistence true",
            f"persistence_location {persistence_dir}/",
            "autosave_on_changes true",
            "autosave_interval 1",
        ]
    lines += [
        f"listener {port} {bind}",
        f"cafile {tls.ca_file}",
        f"certfile {tls.cert_file}",
        f"keyfile {tls.key_file}",
        "require_certificate true",
        f"tls_version tlsv{tls.tls_version}",
    ]
    if identity_plugin is None:
        lines.append("use_identity_as_username true")
    else:
        lines.append(f"plugin {identity_plugin}")
        lines += [f"plugin_opt_{key} {value}" for key, value in (plugin_options or {}).items()]
    if tls.crl_file is not None:
        lines.append(f"crlfile {tls.crl_file}")
    return "\n".join(lines) + "\n"
