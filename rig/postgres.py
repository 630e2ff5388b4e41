"""A private PostgreSQL cluster for tests and benchmarks: ``initdb`` and ``pg_ctl`` from
Debian's ``postgresql`` package, listening only on a unix socket in a temporary directory.

Like :mod:`rig.broker` for Mosquitto: the real server, started and stopped by the rig, on no
TCP port (``listen_addresses=''``), ``trust`` authentication on its own socket only. PostgreSQL
refuses to run as root (initdb: "cannot be run as root"), so as root the cluster runs as the
``postgres`` user the Debian package creates, in a directory handed to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from rig.processes import Service, log_tail

#: The port number names the socket file (``.s.PGSQL.{port}``); no TCP port is opened.
SOCKET_PORT = 5432
#: The install hint, in errors and in the Makefile's postgres-deps target.
INSTALL_HINT = (
    "PostgreSQL is not installed: run `make test` as root (it apt-get installs it) "
    "or `sudo apt-get install postgresql`"
)


class PostgresError(RuntimeError):
    """The cluster could not be made or started; the message says what to install or fix."""


def find_pg_binary(name: str) -> str:
    """``initdb``, ``pg_ctl`` or ``createdb``: on the PATH or in Debian's versioned directory
    (``/usr/lib/postgresql/{version}/bin``, not on the PATH), the newest version first."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        reverse=True,
    )
    if candidates:
        return str(candidates[0])
    raise PostgresError(INSTALL_HINT)


def _as_postgres_user() -> tuple[list[str], int | None, int | None]:
    """A command prefix and the uid/gid to hand files to, when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError(
            "running as root and there is no `postgres` user: install Debian's postgresql "
            "package (apt-get install postgresql), which creates it"
        ) from None
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise PostgresError("running as root needs setpriv (util-linux) to drop to postgres")
    prefix = [setpriv, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]
    return prefix, user.pw_uid, user.pw_gid


class PostgresCluster(Service):
    """initdb, start, create databases, stop; one temporary directory holds it all."""

    def __init__(self, *, durable: bool = True) -> None:
        """``durable=False`` turns ``fsync`` off: for tests of process kills (no power cut),
        kinder to a shared machine; benchmarks keep it on."""
        self._durable = durable
        self._prefix, self._uid, self._gid = _as_postgres_user()
        # Under /tmp, not a pytest directory: those are 0700 root, unreadable to postgres.
        self.directory = Path(tempfile.mkdtemp(prefix="narhub-pg-"))
        self._hand_over(self.directory)
        self.data = self.directory / "data"
        self.socket_dir = self.directory
        self.log_file = self.directory / "postgres.log"
        self.user = "postgres" if self._uid is not None else pwd.getpwuid(os.geteuid()).pw_name
        self._started = False

    def _hand_over(self, path: Path) -> None:
        if self._uid is not None and self._gid is not None:
            os.chown(path, self._uid, self._gid)

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            [*self._prefix, *args], capture_output=True, text=True, check=False, timeout=120
        )
        if result.returncode != 0:
            raise PostgresError(f"{Path(args[0]).name} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        """initdb (once) and start; returns when the server accepts connections (pg_ctl -w)."""
        if not self.data.exists():
            self._run(
                find_pg_binary("initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                f"--username={self.user}",
            )
        options = f"-k {self.socket_dir} -p {SOCKET_PORT} -c listen_addresses=''"
        if not self._durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            find_pg_binary("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self._started = True

    def create_database(self, name: str) -> str:
        """A new empty database; its ``postgresql://`` URL."""
        self._run(
            find_pg_binary("createdb"),
            "-h",
            str(self.socket_dir),
            "-p",
            str(SOCKET_PORT),
            "-U",
            self.user,
            name,
        )
        return self.url(name)

    def url(self, database: str) -> str:
        """The URL of ``database`` over the unix socket."""
        return (
            f"postgresql:///{database}?host={self.socket_dir}&port={SOCKET_PORT}&user={self.user}"
        )

    def stop(self) -> None:
        """Stop (fast shutdown) and remove the directory."""
        if self._started:
            self._started = False
            self._run(find_pg_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server log, for error messages."""
        return log_tail(self.log_file, lines)
