"""What ``narhub run`` keeps out of its memory (issue #11: at most 60 MB RSS), and the bench's
environment being the unit's.

The service is started for real (``technician.entry.main`` with ``run --config``, the path
systemd takes), stopped with SIGTERM once it says READY=1, and its ``sys.modules`` printed:
modules that only the CLI, the region, the rig or remote management need must not be there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from hub_configs import provisioned, write_as

from region.command_sender import RegionCommandKey
from rig.bench.footprint import UNIT_ENVIRONMENT, hub_environment
from rig.broker import RigPki

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "systemd" / "narhub.service"

#: Modules the service must not load with no ``[remote]`` and no sim radio: the technician
#: CLI (typer, click, rich), the region's verifier (cwt, pyhpke), ``cryptography`` (the hub
#: signs with the ``ssl`` module's OpenSSL, drivers/es256.py; certificates are for
#: provisioning and remote renewal), remote management, the rig and the benchmarks, and the
#: feedback component with its libraries (gpiozero, Pillow, luma) when there is no [feedback].
KEPT_OUT = (
    "typer",
    "click",
    "rich",
    "technician.cli",
    "cwt",
    "pyhpke",
    "cryptography",
    "gateway.remote",
    "protocols.commands",
    "bumble",
    "rig",
    "region",
    "rig.bench",
    # The patient's feedback without [feedback]: only its tap (gateway/feedback/hubtap.py).
    "gateway.feedback.component",
    "gateway.feedback.events",
    "gateway.feedback.probe",
    "drivers.feedback",
    "gpiozero",
    "PIL",
    "luma",
    # Format 2 batch bodies (read only, with their zstd dictionary 1): a consent withdrawal
    # loads them (gateway/outbox/consent_gate.py), not every hub (issue #18).
    "protocols.uplink.body",
    "protocols.uplink.v2",
    "protocols.uplink._zdict1",
    # Profiles load on first use (issue #18): a hub that has decoded nothing holds no CGM, GHS,
    # enhanced BP or body composition codec and no observation mapping.
    "protocols.gatt.cgm",
    "protocols.gatt.ghs",
    "protocols.gatt.acom",
    "protocols.gatt.enhanced_bp",
    "protocols.gatt.body_composition",
    "protocols.gatt.mapping",
    "drivers.ble.bp_records",
)

#: Runs ``narhub run`` in this process and stops it on READY=1 (a thread reads the notify
#: socket, as systemd would), then prints the modules it loaded.
_RUN_UNTIL_READY = """
import json, os, signal, socket, sys, threading
config, notify = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(notify)
os.environ["NOTIFY_SOCKET"] = notify

def stop_when_ready():
    while b"READY=1" not in sock.recv(4096):
        pass
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=stop_when_ready, daemon=True).start()
sys.argv = ["narhub", "run", "--config", config]
from technician.entry import main
main()
print(json.dumps(sorted(sys.modules)))
"""


def _config(directory: Path, rig_pki: RigPki, *, remote: bool = False) -> Path:
    """A board-only hub (BlueZ backend, no devices), no ``[remote]`` unless ``remote`` (then
    with a pinned region command key, as ``narhub bench footprint --field``); no broker
    listening."""
    identity = rig_pki.client("hub-fp-1")
    path = directory / "narhub.toml"
    command_key = None
    if remote:
        command_key = RegionCommandKey.init(directory / "region-command", kid="fp-cmd-1")
    config = provisioned(
        path,
        rig_pki,
        "hub-fp-1",
        directory / "data",
        broker_url="mqtts://127.0.0.1:9",
        ble_backend="bluez",
        command_key=None if command_key is None else command_key.public_file,
        command_kid="fp-cmd-1",
    )
    return write_as(path, config, identity)


def _modules_of_narhub_run(rig_pki: RigPki, *, remote: bool) -> set[str]:
    """The modules ``narhub run`` holds once it has said READY=1."""
    with tempfile.TemporaryDirectory(prefix="nh-fp-", dir="/tmp") as tmp:  # short socket path
        directory = Path(tmp)
        config = _config(directory, rig_pki, remote=remote)
        done = subprocess.run(
            [sys.executable, "-c", _RUN_UNTIL_READY, str(config), str(directory / "notify")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_narhub_run_keeps_the_cli_region_and_remote_modules_out(rig_pki: RigPki) -> None:
    loaded = _modules_of_narhub_run(rig_pki, remote=False)
    assert {"gateway.service", "gateway.hub", "protocols.uplink.signing"} <= loaded
    leaked = sorted(
        name for name in loaded for top in KEPT_OUT if name == top or name.startswith(top + ".")
    )
    assert leaked == [], f"narhub run imported {leaked}"


#: With ``[remote]`` the hub verifies commands and firmware manifests itself
#: (protocols/cose.py, the ``ssl`` module's OpenSSL) and imports ``cryptography`` only while a
#: certificate renewal runs (gateway/remote/renewal.py).
KEPT_OUT_WITH_REMOTE = ("cwt", "pyhpke", "cryptography", "common.pki", "gateway.identity")


def test_narhub_run_with_remote_keeps_cwt_and_cryptography_out(rig_pki: RigPki) -> None:
    loaded = _modules_of_narhub_run(rig_pki, remote=True)
    # Remote management is really running: the command verifier is loaded.
    assert {"gateway.remote.hubside", "protocols.commands", "protocols.cose"} <= loaded
    leaked = sorted(
        name
        for name in loaded
        for top in KEPT_OUT_WITH_REMOTE
        if name == top or name.startswith(top + ".")
    )
    assert leaked == [], f"narhub run with [remote] imported {leaked}"


def test_the_bench_gives_the_hub_exactly_the_units_environment(tmp_path: Path) -> None:
    unit = dict(re.findall(r"^Environment=([A-Z_]+)=(.*)$", UNIT.read_text(), re.MULTILINE))
    assert unit == UNIT_ENVIRONMENT
    shell = {
        "PATH": "/usr/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "0",
        "MALLOC_ARENA_MAX": "8",
        "MALLOC_TRIM_THRESHOLD_": "1",
    }
    env = hub_environment(shell, tmp_path / "pycache")
    assert env == {
        "PATH": "/usr/bin",
        **UNIT_ENVIRONMENT,
        "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache"),
    }
