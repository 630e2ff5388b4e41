"""A local Mosquitto broker with mutual TLS and per-hub ACLs, started as a subprocess.

The configuration mirrors what a region runs (``narhub region broker-config``): TLS 1.3,
``require_certificate``, the certificate's common name as the MQTT identity and the client id
bound to it (the identity plugin, :mod:`region.broker_plugin`), and an ACL that lets a hub
write only under ``narhub/v1/{its id}/`` and the receivers read every hub.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.pki import CertificateAuthority, Identity, issue_identity
from drivers.mqtt import MqttLink, TlsFiles
from region.broker_config import BrokerTls, acl_text, mosquitto_conf
from region.broker_plugin import PluginBuildError, build_identity_plugin, plugin_options
from rig.processes import Service, log_tail, stop_process

if TYPE_CHECKING:
    from gateway.config import UplinkConfig

MOSQUITTO_CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerError(RuntimeError):
    """The broker could not be started; the message says what to install or fix."""


def find_mosquitto() -> str:
    """The mosquitto binary, or a :class:`BrokerError` telling how to install it."""
    for candidate in MOSQUITTO_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise BrokerError(
        "mosquitto is not installed: run `make test` as root (it apt-get installs it) "
        "or `sudo apt-get install mosquitto`"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mosquitto_rig_conf(
    *,
    port: int,
    ca_file: Path,
    cert_file: Path,
    key_file: Path,
    acl_file: Path,
    tls: str,
    crl_file: Path | None = None,
    identity_plugin: Path | None = None,
    persistence_dir: Path | None = None,
    recipients: tuple[str, ...] = (),
) -> str:
    """The region broker configuration on a loopback port (runs as the current user);
    ``recipients``: the other recipients sharing it (their trees and client ids)."""
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    return mosquitto_conf(
        port=port,
        bind="127.0.0.1",
        tls=BrokerTls(ca_file, cert_file, key_file, crl_file, tls),
        acl_file=acl_file,
        persistence_dir=persistence_dir,
        # Mosquitto drops root to the `mosquitto` user, which cannot read our temp files.
        run_as_user=user,
        identity_plugin=identity_plugin,
        plugin_options=None if identity_plugin is None else plugin_options(recipients),
    )


@dataclass
class RigPki:
    """Every identity the rig needs, issued by one region CA."""

    ca: CertificateAuthority
    ca_file: Path
    broker: Identity
    directory: Path

    @classmethod
    def create(cls, directory: Path) -> RigPki:
        """A region CA and a broker certificate for 127.0.0.1/localhost."""
        directory.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority.create("narhub test region CA")
        ca_file = directory / "region-ca.crt"
        ca_file.write_bytes(ca.cert_pem)
        broker = issue_identity(ca, directory, "broker", server_names=("127.0.0.1", "localhost"))
        return cls(ca, ca_file, broker, directory)

    def client(self, name: str) -> Identity:
        """A client identity (hub id or receiver name as the CN)."""
        return issue_identity(self.ca, self.directory, name)


class MosquittoBroker(Service):
    """A Mosquitto process on a free loopback port; stop and start it again on the same port."""

    def __init__(
        self,
        pki: RigPki,
        directory: Path,
        *,
        tls: str = "1.3",
        identity_plugin: bool = True,
        persistence: bool = False,
    ) -> None:
        """``identity_plugin=False`` runs the broker without the region's identity plugin
        (client ids not bound to certificates): only to show what the plugin prevents.
        ``persistence``: sessions and queued messages survive a restart (as a region runs
        it, ``narhub region broker-config --persistence``)."""
        self.pki = pki
        self._persistence = persistence
        self._identity_plugin = identity_plugin
        self.directory = directory
        self.port = free_port()
        self.host = "127.0.0.1"
        self._tls = tls
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = directory / "mosquitto.log"
        #: A CRL for the broker to enforce (set before start/restart).
        self.crl_file: Path | None = None
        #: Other recipients sharing this broker, each in its own topic tree (set before start).
        self.recipients: tuple[str, ...] = ()

    @property
    def pid(self) -> int | None:
        """The broker process id while it runs."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def connector(self, identity: str, client_id: str | None = None) -> Callable[[], MqttLink]:
        """Links to this broker as the rig client ``identity`` (its certificate issued by the
        rig's CA), with the client id ``client_id`` (default: ``identity``)."""
        files = self.pki.client(identity)
        tls = TlsFiles(self.pki.ca_file, files.cert_file, files.key_file)

        def connect() -> MqttLink:
            return MqttLink(self.host, self.port, client_id=client_id or identity, tls=tls)

        return connect

    def uplink_config(self, identity: Identity) -> UplinkConfig:
        """A hub's ``[uplink]`` to this broker as ``identity`` (a client of the rig's CA)."""
        # Imported here: the hub's configuration models (pydantic) would otherwise load in
        # every process that imports the broker, the benchmarks' receiver processes among them.
        from gateway.config import UplinkConfig  # noqa: PLC0415 - see above

        return UplinkConfig(
            host=self.host,
            port=self.port,
            ca_file=self.pki.ca_file,
            cert_file=identity.cert_file,
            key_file=identity.key_file,
        )

    def start(self, *, ready_timeout_s: float = 10.0) -> None:
        """Start the broker and return once it accepts TCP connections."""
        binary = find_mosquitto()
        self.directory.mkdir(parents=True, exist_ok=True)
        acl = self.directory / "acl"
        acl.write_text(acl_text(recipients=self.recipients))
        if self._persistence:
            (self.directory / "persist").mkdir(exist_ok=True)
        plugin = None
        if self._identity_plugin:
            try:
                plugin = build_identity_plugin(self.pki.directory / "broker-plugin")
            except PluginBuildError as exc:
                raise BrokerError(str(exc)) from None
        conf = self.directory / "mosquitto.conf"
        conf.write_text(
            mosquitto_rig_conf(
                port=self.port,
                ca_file=self.pki.ca_file,
                cert_file=self.pki.broker.cert_file,
                key_file=self.pki.broker.key_file,
                acl_file=acl,
                tls=self._tls,
                crl_file=self.crl_file,
                identity_plugin=plugin,
                recipients=self.recipients,
                persistence_dir=self.directory / "persist" if self._persistence else None,
            )
        )
        log = self._log_file.open("ab")
        self._process = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"mosquitto exited: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=0.2),
            ):
                return
            # Readiness probe of an external process: poll the port, bounded by the deadline.
            time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen within {ready_timeout_s}s: {self.log_tail()}")

    def stop(self) -> None:
        """Terminate the broker and wait for it to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        stop_process(process, timeout_s=10, kill_wait_s=10)

    def restart(self) -> None:
        """Stop and start again on the same port (sessions persist only with
        ``persistence``)."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker log, for error messages."""
        return log_tail(self._log_file, lines)
