"""A FUSE file system that forgets what was not fsynced: a power cut on command.

Run as ``python powercut_fs.py MOUNTPOINT SEED MODE`` (foreground); it mounts an in-memory file
system and reads commands on stdin:

- ``cut``: a power cut. Every file goes back to its content at its last ``fsync`` plus, in
  MODE ``subset``, a random (seeded) subset of the writes since then, in order, each possibly
  torn at a 512-byte sector boundary (a disk may persist any unsynced write, in any order);
  in MODE ``none`` every unsynced write is lost. A file whose name was never made durable
  (by ``fsync`` of the file, as ext4 and XFS do for a new file, or ``fsync`` of its
  directory) disappears. Answers ``ok``.
- ``stats``: answers ``fsyncs=N writes=N cuts=N``.

Not modelled: the kernel's page cache of a *surviving* process (the harness cuts only while no
worker runs, so nothing is cached across a cut: files are opened without ``keep_cache`` and
attributes are not cached), and metadata such as modes and times.
"""

from __future__ import annotations

import errno
import random
import stat
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mfusepy import FUSE, FuseOSError, Operations

SECTOR = 512


@dataclass
class Node:
    """A regular file: what is on "disk" (``durable``), what readers see, and the unsynced ops."""

    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    pending: list[tuple[str, int, bytes]] = field(default_factory=list)
    named: bool = False  # the name survives a cut


def _apply(data: bytearray, op: tuple[str, int, bytes]) -> None:
    kind, offset, chunk = op
    if kind == "truncate":
        del data[offset:]
        if len(data) < offset:
            data.extend(bytes(offset - len(data)))
        return
    if len(data) < offset:
        data.extend(bytes(offset - len(data)))
    data[offset : offset + len(chunk)] = chunk


class PowerCutFs(Operations):
    """The file system (single-threaded FUSE loop; the control thread takes the mutex)."""

    use_ns = True

    def __init__(self, seed: int, mode: str) -> None:
        self.rng = random.Random(seed)
        self.mode = mode
        self._mutex = threading.Lock()
        self.files: dict[str, Node] = {}
        self.dirs: dict[str, bool] = {"/": True}  # path -> name durable
        self.fsyncs = 0
        self.writes = 0
        self.cuts = 0
        self.now = time.time_ns()

    # -- control ---------------------------------------------------------------------------

    def cut(self) -> None:
        with self._mutex:
            self.cuts += 1
            for path in list(self.files):
                node = self.files[path]
                if not node.named:
                    del self.files[path]
                    continue
                data = bytearray(node.durable)
                if self.mode == "subset":
                    for kind, offset, written in node.pending:
                        if self.rng.random() < 0.5:
                            continue
                        chunk = written
                        if kind == "write" and len(chunk) > SECTOR and self.rng.random() < 0.3:
                            torn = self.rng.randrange(1, len(chunk) // SECTOR + 1) * SECTOR
                            chunk = chunk[:torn]
                        _apply(data, (kind, offset, chunk))
                node.data = data
                node.durable = bytes(data)
                node.pending = []
            for path in [p for p, durable in self.dirs.items() if not durable]:
                del self.dirs[path]

    # -- file system -------------------------------------------------------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        with self._mutex:
            if path in self.dirs:
                mode, size = stat.S_IFDIR | 0o755, 0
            elif path in self.files:
                mode, size = stat.S_IFREG | 0o644, len(self.files[path].data)
            else:
                raise FuseOSError(errno.ENOENT)
        now = self.now
        return {
            "st_mode": mode,
            "st_nlink": 2 if stat.S_ISDIR(mode) else 1,
            "st_size": size,
            "st_ctime": now,
            "st_mtime": now,
            "st_atime": now,
        }

    def readdir(self, path: str, fh: int) -> list[str]:
        prefix = path.rstrip("/") + "/"
        with self._mutex:
            names = [
                p[len(prefix) :]
                for p in [*self.files, *self.dirs]
                if p.startswith(prefix) and p != prefix and "/" not in p[len(prefix) :]
            ]
        return [".", "..", *names]

    def mkdir(self, path: str, mode: int) -> int:
        with self._mutex:
            self.dirs[path] = False
        return 0

    def rmdir(self, path: str) -> int:
        with self._mutex:
            self.dirs.pop(path, None)
        return 0

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        with self._mutex:
            self.files.setdefault(path, Node())
        return 0

    def open(self, path: str, flags: int) -> int:
        with self._mutex:
            if path not in self.files:
                raise FuseOSError(errno.ENOENT)
        return 0

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self._mutex:
            return bytes(self.files[path].data[offset : offset + size])

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self._mutex:
            node = self.files[path]
            op = ("write", offset, bytes(data))
            _apply(node.data, op)
            node.pending.append(op)
            self.writes += 1
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self._mutex:
            node = self.files[path]
            op = ("truncate", length, b"")
            _apply(node.data, op)
            node.pending.append(op)
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self._mutex:
            node = self.files[path]
            node.durable = bytes(node.data)
            node.pending = []
            node.named = True
            self.fsyncs += 1
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        prefix = path.rstrip("/") + "/"
        with self._mutex:
            for p, node in self.files.items():
                if p.startswith(prefix) and "/" not in p[len(prefix) :]:
                    node.named = True
            for p in self.dirs:
                if p.startswith(prefix) or p == path:
                    self.dirs[p] = True
        return 0

    def unlink(self, path: str) -> int:
        with self._mutex:
            self.files.pop(path, None)
        return 0

    def rename(self, old: str, new: str) -> int:
        with self._mutex:
            node = self.files.pop(old)
            node.named = False
            self.files[new] = node
        return 0

    def release(self, path: str, fh: int) -> int:
        return 0

    def flush(self, path: str, fh: int) -> int:
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        return 0

    def chmod(self, path: str, mode: int) -> int:
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 2**24, "f_bavail": 2**23,
                "f_bfree": 2**23, "f_files": 2**20, "f_ffree": 2**20, "f_namemax": 255}  # fmt: skip


def _control(fs: PowerCutFs) -> None:
    for line in sys.stdin:
        command = line.strip()
        if command == "cut":
            fs.cut()
            reply = "ok"
        elif command == "stats":
            reply = f"fsyncs={fs.fsyncs} writes={fs.writes} cuts={fs.cuts}"
        else:
            reply = f"unknown command {command!r}"
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()


def main() -> None:
    mountpoint, seed, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    fs = PowerCutFs(seed, mode)
    threading.Thread(target=_control, args=(fs,), daemon=True, name="control").start()
    FUSE(
        fs,
        mountpoint,
        foreground=True,
        nothreads=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
    )


if __name__ == "__main__":
    main()
