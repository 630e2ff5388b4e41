"""The installer and the systemd unit: idempotent install into a fresh root, verify, uninstall."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from rig.bench.footprint import UNIT_ENVIRONMENT

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "deploy" / "install.sh"
UNIT = REPO / "deploy" / "systemd" / "narhub.service"


def _install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(INSTALL), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def fresh_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A container-like root with only root in /etc/passwd, installed into twice."""
    assert os.geteuid() == 0, "the installer test needs root (CI runs as root)"
    root = tmp_path_factory.mktemp("root")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    for attempt in (1, 2):
        result = _install(root)
        assert result.returncode == 0, f"run {attempt}: {result.stdout}{result.stderr}"
    return root


def test_installer_is_idempotent_and_sets_users_modes_and_files(fresh_root: Path) -> None:
    passwd = (fresh_root / "etc" / "passwd").read_text().splitlines()
    assert sum(line.startswith("narhub:") for line in passwd) == 1
    groups = {
        line.split(":")[0]: line for line in (fresh_root / "etc/group").read_text().splitlines()
    }
    assert groups["bluetooth"].endswith(":narhub")
    assert groups["dialout"].endswith(":narhub")
    uid = int(next(line for line in passwd if line.startswith("narhub:")).split(":")[2])
    data = (fresh_root / "var/lib/narhub").stat()
    assert (data.st_uid, stat.S_IMODE(data.st_mode)) == (uid, 0o750)
    assert stat.S_IMODE((fresh_root / "etc/narhub").stat().st_mode) == 0o750
    assert (fresh_root / "etc/systemd/system/narhub.service").read_text() == UNIT.read_text()
    assert (fresh_root / "etc/systemd/journald.conf.d/narhub.conf").exists()
    version = subprocess.run(
        [str(fresh_root / "opt/narhub/venv/bin/narhub"), "version", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"narhub": "0.1.0"' in version.stdout


def test_unit_passes_systemd_analyze_verify(fresh_root: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd"
    # The same unit, with ExecStart pointing at the program inside the fresh root.
    unit = tmp_path / "narhub.service"
    unit.write_text(
        UNIT.read_text().replace(
            "/opt/narhub/venv/bin/narhub", str(fresh_root / "opt/narhub/venv/bin/narhub")
        )
    )
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no unknown keys, nothing ignored


def test_uninstall_keeps_data_unless_purged(fresh_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(fresh_root, root, symlinks=True)
    (root / "var/lib/narhub/outbox.sqlite3").write_bytes(b"readings")
    result = _install(root, "--uninstall")
    assert result.returncode == 0, result.stderr
    assert not (root / "opt/narhub").exists()
    assert not (root / "etc/systemd/system/narhub.service").exists()
    assert (root / "var/lib/narhub/outbox.sqlite3").read_bytes() == b"readings"
    result = _install(root, "--uninstall", "--purge")
    assert result.returncode == 0, result.stderr
    assert not (root / "var/lib/narhub").exists()
    assert "narhub:" not in (root / "etc/passwd").read_text()


def test_the_footprint_bench_runs_the_service_in_the_units_environment() -> None:
    unit = (Path(__file__).parents[1] / "deploy/systemd/narhub.service").read_text()
    for key, value in UNIT_ENVIRONMENT.items():
        assert f"Environment={key}={value}\n" in unit
