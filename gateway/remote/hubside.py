"""Build the hub's command handler from its configuration (the wiring ``gateway.hub`` uses).

``[remote] command_keys`` pins the region's command keys; without that section the hub takes
no commands. A pinned key that cannot be read is an error in the log, and the hub runs on
without remote management: readings must keep flowing whatever happens to management.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from common.command_keys import PemCommandVerifier
from common.firmware_bundle import FIRMWARE_DIR
from drivers.mqtt import MqttLink, TlsFiles
from drivers.serial import find_boards
from gateway.config import HubConfig
from gateway.outbox import AsyncOutbox
from gateway.pipeline import Pipeline
from gateway.remote.config_update import ConfigUpdater
from gateway.remote.consent import ConsentApplier
from gateway.remote.firmware import (
    Deployer,
    FirmwareUpdater,
    FlashDirDeployer,
    MpremoteDeployer,
    TargetBoard,
)
from gateway.remote.handler import Applier, CommandHandler
from gateway.remote.live import apply_live
from gateway.remote.renewal import CertificateRenewal
from gateway.remote.state import RemoteState, RemoteStateError
from protocols.command_topics import COMMAND_CLIENT_SUFFIX, RENEWAL_CLIENT_SUFFIX
from protocols.commands import CommandVerifier

logger = logging.getLogger(__name__)

#: How long the broker keeps the hub's command session (and commands for it) while offline.
SESSION_EXPIRY_S = 7 * 86_400


class RemoteSetupError(RuntimeError):
    """Remote management cannot start; ``what`` names the file or key."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: {reason}")


def state_path(config: HubConfig) -> Path:
    """Where the last accepted sequence number is kept."""
    return config.data_dir / "remote" / "state.json"


def load_verifier(config: HubConfig) -> CommandVerifier:
    """The verifier over the pinned command keys."""
    keys = pinned_keys(config)
    try:
        return PemCommandVerifier(config.hub_id, keys)
    except ValueError as exc:
        reason = f"not a P-256 public key PEM: {exc}"
        raise RemoteSetupError("remote.command_keys", reason) from None


def pinned_keys(config: HubConfig) -> dict[str, bytes]:
    """The pinned command keys (PEM) by kid."""
    remote = config.remote
    if remote is None or not remote.command_keys:
        raise RemoteSetupError("remote.command_keys", "no region command key is pinned")
    keys: dict[str, bytes] = {}
    for kid, path in remote.command_keys.items():
        try:
            keys[kid] = path.read_bytes()
        except OSError as exc:
            raise RemoteSetupError(
                f"remote.command_keys.{kid}", f"{path}: {exc.strerror}"
            ) from None
    return keys


def command_connect(config: HubConfig) -> Callable[[], AbstractAsyncContextManager[MqttLink]]:
    """The command session's connection: own client id, manual PUBACK, persistent session.

    The TLS files are read at every connect, so a renewed certificate is used from the next
    connection on."""
    up = config.uplink

    def connect() -> MqttLink:
        return MqttLink(
            up.host,
            up.port,
            client_id=f"{config.hub_id}{COMMAND_CLIENT_SUFFIX}",
            tls=TlsFiles(up.ca_file, up.cert_file, up.key_file, up.tls_min_version),
            manual_ack=True,
            session_expiry_s=SESSION_EXPIRY_S,
        )

    return connect


def build_command_handler(
    config: HubConfig,
    config_path: Path | None,
    pipeline: Pipeline,
    outbox: AsyncOutbox,
    *,
    on_credentials: Callable[[], None] | None = None,
    release_board: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
    on_config: Callable[[HubConfig], None] | None = None,
    extra_appliers: dict[str, Applier] | None = None,
) -> CommandHandler | None:
    """The handler for a hub with ``[remote]``, else None (errors are logged, not raised).

    ``on_credentials``: called after a renewed key and certificate are installed (the hub
    signs with the new key and reconnects); without it the hub takes no ``renew-cert``.
    ``release_board(port)``: the hub stops serving a board while a firmware update flashes it;
    without it the hub takes no ``firmware``. ``on_config(new)``: called after a configuration
    update is durable, for what the hub applies itself (board sampling intervals)."""
    if config.remote is None:
        return None
    try:
        verifier = load_verifier(config)
        keys = pinned_keys(config)
        state = RemoteState(state_path(config))
    except (RemoteSetupError, RemoteStateError) as exc:
        logger.error("remote management disabled: %s", exc)
        return None
    appliers: dict[str, Applier] = dict(extra_appliers or {})
    if config_path is not None:

        def live(_old: HubConfig, new: HubConfig) -> None:
            apply_live(pipeline, outbox, new)
            if on_config is not None:
                on_config(new)  # the hub's own parts: the boards' sampling intervals

        appliers["config"] = ConfigUpdater(config_path, apply_live=live)
    appliers.setdefault("consent", ConsentApplier(config))
    handler = CommandHandler(config.hub_id, verifier, state, appliers, command_connect(config))
    if on_credentials is not None:
        notify = on_credentials

        def installed() -> None:
            notify()
            handler.request_reconnect()

        renewal = CertificateRenewal(config, probe=probe_connect(config), on_installed=installed)
        handler.add_applier("renew-cert", renewal)
    if release_board is not None:
        handler.add_applier(
            "firmware",
            FirmwareUpdater(
                lambda: target_boards(config), keys, deployer_for(config), release_board
            ),
        )
    return handler


def target_boards(config: HubConfig) -> list[TargetBoard]:
    """The configured boards with their type (``board`` in the configuration, else USB)."""
    detected: dict[str, str] | None = None
    targets = []
    for board in config.sensors.boards:
        board_type: str | None = board.board
        if board_type is None:
            if detected is None:
                detected = {}
                for found in find_boards():
                    detected[found.device] = found.board
                    if found.serial_number:
                        detected[f"usb:{found.serial_number}"] = found.board
            board_type = detected.get(board.port.removeprefix("serial:"))
        if board_type is not None:
            targets.append(TargetBoard(board.port, board_type))
    return targets


def deployer_for(config: HubConfig) -> Callable[[str], Deployer]:
    """The virtual rig's boards take files in their flash directory; USB boards mpremote."""

    def deployer(board_type: str) -> Deployer:
        if board_type == "sim":
            return FlashDirDeployer()
        return MpremoteDeployer(board_type, config.data_dir / "firmware", FIRMWARE_DIR)

    return deployer


def probe_connect(config: HubConfig) -> Callable[[TlsFiles], AbstractAsyncContextManager[MqttLink]]:
    """A one-off connection with candidate TLS files (renewal proves them before switching)."""
    up = config.uplink

    def connect(files: TlsFiles) -> MqttLink:
        return MqttLink(
            up.host, up.port, client_id=f"{config.hub_id}{RENEWAL_CLIENT_SUFFIX}", tls=files
        )

    return connect
