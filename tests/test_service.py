"""``narhub run`` under a fake systemd: READY, WATCHDOG from the loop, a stuck loop, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_configs import provisioned, write_as

from rig.broker import MosquittoBroker, RigPki


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """The socket systemd would own ($NOTIFY_SOCKET); a short path (sun_path is 108 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="nh-", dir="/tmp"))
    path = directory / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        yield sock, str(path)
    finally:
        sock.close()
        path.unlink()
        directory.rmdir()


def _messages(sock: socket.socket, timeout_s: float) -> list[str]:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(4096).decode().splitlines()
    except TimeoutError:
        return []


def _wait_for(sock: socket.socket, wanted: str, deadline_s: float) -> float:
    """Seconds until a message containing ``wanted`` arrived; fails at the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if wanted in _messages(sock, max(0.05, deadline_s - (time.monotonic() - start))):
            return time.monotonic() - start
    raise AssertionError(f"no {wanted} within {deadline_s}s")


def _config(tmp_path: Path, broker: MosquittoBroker, rig_pki: RigPki) -> Path:
    identity = rig_pki.client("hub-svc-1")
    path = tmp_path / "narhub.toml"
    broker_url = f"mqtts://127.0.0.1:{broker.port}"
    config = provisioned(
        path, rig_pki, "hub-svc-1", tmp_path / "data", broker_url=broker_url, ble_backend="sim"
    )
    return write_as(path, config, identity)


def test_ready_watchdog_stuck_loop_and_sigterm(
    tmp_path: Path,
    broker: MosquittoBroker,
    rig_pki: RigPki,
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    env = {
        **os.environ,
        "NOTIFY_SOCKET": path,
        "WATCHDOG_USEC": "200000",
        "NARHUB_DEBUG_HOOKS": "1",
        "NARHUB_DEBUG_BLOCK_S": "2",
    }
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from technician.entry import main; main()",
            "run",
            "--config",
            str(_config(tmp_path, broker, rig_pki)),
        ],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(sock, "READY=1", 20)
        for _ in range(3):
            _wait_for(sock, "WATCHDOG=1", 2)

        process.send_signal(signal.SIGUSR2)  # debug hook: block the loop for 2 s
        # Messages already queued may still arrive; then silence while the loop is stuck.
        drain_until = time.monotonic() + 0.3
        while time.monotonic() < drain_until:
            _messages(sock, 0.05)
        assert _messages(sock, 1.0) == [], "WATCHDOG kept coming from a blocked loop"
        _wait_for(sock, "WATCHDOG=1", 5)  # the loop is back

        process.send_signal(signal.SIGTERM)
        _wait_for(sock, "STOPPING=1", 5)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        with process.stderr:
            stderr = process.stderr.read().decode()
    assert "narhub running" in stderr
    assert "Traceback" not in stderr, stderr
