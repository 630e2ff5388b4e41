"""``narhub bench install``: what a hub installs, and what ``narhub run`` loads.

``pip install narhub`` (no extra) into a new virtual environment, from a source tree (this
checkout, or ``--source DIR`` to measure another one on the same machine): the distributions it
brings and their size on disk. Then that installation's ``narhub run`` is started the way
systemd does (``NOTIFY_SOCKET``), with a configuration made by its own ``narhub init`` and a
certificate from a throw-away region CA, and stopped with SIGTERM once it says ``READY=1``;
``PYTHONPROFILEIMPORTTIME`` (python(1), ``-X importtime``) lists every module it imported.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

from rig.broker import RigPki

REPO = Path(__file__).resolve().parents[2]
_READY_TIMEOUT_S = 60.0
#: What pip puts into every virtual environment: not the product's.
_TOOLING = {"pip", "setuptools", "wheel"}


class InstallBenchError(RuntimeError):
    """The installation or the service failed; the message carries pip's or the hub's output."""


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise InstallBenchError(f"{' '.join(argv[:3])}: {done.stderr[-2000:]}")
    return done


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3*/site-packages")
    return found


def _distributions(venv: Path) -> list[dict[str, Any]]:
    """Each installed distribution with its version and its files' bytes (RECORD)."""
    script = (
        "import json, importlib.metadata as m\n"
        "out = []\n"
        "for d in m.distributions():\n"
        "    size = sum((f.size or 0) for f in (d.files or ()))\n"
        "    out.append({'name': d.metadata['Name'], 'version': d.version, 'bytes': size})\n"
        "print(json.dumps(out))\n"
    )
    import json  # noqa: PLC0415 - only here

    # Run from the venv: the current directory would add a source tree's metadata.
    listed = json.loads(_run([str(venv / "bin" / "python"), "-c", script], cwd=venv).stdout)
    return sorted(
        (d for d in listed if d["name"].lower() not in _TOOLING), key=lambda d: -d["bytes"]
    )


def _hub_config(venv: Path, directory: Path) -> Path:
    """A board-only hub (BlueZ backend, no devices, a broker that is not there), set up with
    the installation's own ``narhub init`` and a certificate of a throw-away CA."""
    pki = RigPki.create(directory / "pki")
    identity = pki.client("hub-install-1")
    config = directory / "narhub.toml"
    narhub = str(venv / "bin" / "narhub")
    init = ["init", "--hub-id", "hub-install-1", "--broker", "mqtts://127.0.0.1:9"]
    init += ["--ca-file", str(pki.ca_file), "--data-dir", str(directory / "data")]
    _run([narhub, *init, "--ble-backend", "bluez", "--config", str(config)])
    uplink = tomllib.loads(config.read_text())["uplink"]
    for source, target in ((identity.cert_file, "cert_file"), (identity.key_file, "key_file")):
        Path(uplink[target]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, uplink[target])
    return config


def _imported_modules(venv: Path, config: Path, directory: Path) -> tuple[set[str], float]:
    """The modules ``narhub run`` imported until READY=1, and the seconds it took."""
    notify = directory / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(_READY_TIMEOUT_S)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MALLOC_"))}
    env |= {"NOTIFY_SOCKET": str(notify), "PYTHONPROFILEIMPORTTIME": "1"}
    started = time.monotonic()
    hub = subprocess.Popen(
        [str(venv / "bin" / "narhub"), "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
        ready_s = time.monotonic() - started
    except TimeoutError:
        hub.kill()
        raise InstallBenchError(f"no READY=1: {hub.communicate()[1][-2000:]}") from None
    finally:
        sock.close()
    hub.send_signal(signal.SIGTERM)
    _, stderr = hub.communicate(timeout=30)
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and "imported package" not in line
    }
    return modules, ready_s


def run(*, duration_s: float = 0.0, source: Path | None = None) -> dict[str, Any]:
    """Install ``source`` (default: this checkout) as a hub does and measure it."""
    del duration_s  # one installation, one start: nothing to repeat
    tree = (source or REPO).resolve()
    with tempfile.TemporaryDirectory(prefix="nh-inst-", dir="/tmp") as tmp:
        directory = Path(tmp)
        venv = directory / "venv"
        _run([sys.executable, "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run([*pip, str(tree)])
        site_bytes = _tree_bytes(_site_packages(venv))
        distributions = _distributions(venv)
        modules, ready_s = _imported_modules(venv, _hub_config(venv, directory), directory)
    tops = sorted({name.split(".")[0] for name in modules})
    own = ("protocols", "drivers", "common", "gateway", "technician", "region", "rig")
    return {
        "benchmark": "install",
        "source": str(tree),
        "python": sys.version.split()[0],
        "distributions": distributions,
        "distribution_count": len(distributions),
        "installed_bytes": sum(d["bytes"] for d in distributions),
        "site_packages_bytes": site_bytes,
        "narhub_run": {
            "ready_s": round(ready_s, 3),
            "modules": len(modules),
            "narhub_modules": sorted(m for m in modules if m.split(".")[0] in own),
            "top_level_packages": tops,
        },
    }
