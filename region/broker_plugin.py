"""The broker's identity plugin: a client id can only be used with its own certificate.

Mosquitto 2.0 makes the certificate's CN the MQTT username (``use_identity_as_username``)
but does not tie the client id to it: a hub's valid certificate could connect under another
hub's client id, disconnect it, publish its Will and, with a clean start, discard its queued
commands (MQTT 5.0 section 3.1.4, CONNECT actions: a second connection with a client id
closes the first). ``region/mosquitto/narhub_identity.c`` is a small plugin for Mosquitto's
plugin interface (``mosquitto_plugin.h``, version 5) that accepts a CONNECT only when its
client id is the certificate's CN, or the CN with one of the hub's suffixes
(:data:`protocols.command_topics.HUB_CLIENT_SUFFIXES`), or, for the region's services that
share one certificate name (receivers, operators), the CN followed by ``-`` and more; it then
sets the username to the CN so the ACL's ``%u`` patterns hold (docs/region-scale.md).

It is built from source with the system's C compiler against Debian's ``mosquitto-dev``,
``libmosquitto-dev`` and ``libssl-dev`` headers (``make broker-deps`` installs them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from common.errors import HintedError
from protocols.command_topics import HUB_CLIENT_SUFFIXES
from region.broker_config import OPERATOR_USER, RECEIVER_USER, recipient_receiver

SOURCE = Path(__file__).with_name("mosquitto") / "narhub_identity.c"
#: Certificate names shared by several clients of the region (each with its own client id).
SERVICE_NAMES = (RECEIVER_USER, OPERATOR_USER)
INSTALL_HINT = (
    "install a C compiler and the Mosquitto plugin headers: "
    "apt-get install gcc libc6-dev mosquitto-dev libmosquitto-dev libssl-dev "
    "(`make broker-deps` as root does)"
)


class PluginBuildError(HintedError, RuntimeError):
    """The plugin could not be built; ``reason`` says why, ``hint`` what to install."""

    def __init__(self, reason: str, hint: str = INSTALL_HINT) -> None:
        super().__init__(reason, hint)


def plugin_options(recipients: tuple[str, ...] = ()) -> dict[str, str]:
    """The ``plugin_opt_*`` lines' values (mosquitto.conf(5): ``plugin_opt_key value``).

    ``recipients``: the other recipients sharing this broker (docs/consent.md). A hub
    forwarding to one of them over this broker connects a second time as ``{hub}-{recipient}``
    (two sessions under one client id would close each other, MQTT 5.0 section 3.1.4), so that
    suffix is the hub's too; the recipient's receivers share the certificate name
    ``{recipient}-receiver`` as the region's share theirs."""
    suffixes = (*HUB_CLIENT_SUFFIXES, *(f"-{r}" for r in recipients))
    services = (*SERVICE_NAMES, *(recipient_receiver(r) for r in recipients))
    return {"suffixes": " ".join(suffixes), "services": " ".join(services)}


def build_identity_plugin(out_dir: Path) -> Path:
    """Compile the plugin into ``out_dir`` (named by the source's hash, reused when built)."""
    source = SOURCE.read_bytes()
    target = out_dir / f"narhub_identity-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise PluginBuildError("no C compiler (cc) to build the broker's identity plugin")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    command = [compiler, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE)]
    result = subprocess.run(  # noqa: S603 - the system compiler on our own source
        [*command, "-lcrypto"], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (result.stderr.strip().splitlines() or ["(no output)"])[0]
        raise PluginBuildError(f"building the broker's identity plugin failed: {first}")
    tmp.replace(target)
    return target
